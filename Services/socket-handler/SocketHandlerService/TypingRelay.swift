import EventBus
import LiveSockets
import Logging
import ServiceLifecycle

/// Typing indicators, relayed a batch at a time so a socket's read loop never waits: one cache
/// lookup of the conversations' members, then one route of every frame. Typing is not stored; only
/// members may type, and a non-member is told so.
final class TypingRelay: Service {
    struct Signal: Sendable {
        let userId: String
        let conversationId: String
        let typing: Bool
        let connection: LiveConnection
    }

    private let queue = BatchQueue<Signal>(capacity: 10_000)
    private let membership: MembershipCache
    private let router: LiveRouter
    private let logger: Logger

    init(membership: MembershipCache, router: LiveRouter, logger: Logger) {
        self.membership = membership
        self.router = router
        self.logger = logger
    }

    /// Queues a signal; false when the relay is overwhelmed (the signal is simply dropped).
    @discardableResult
    func submit(_ signal: Signal) -> Bool {
        queue.append(signal)
    }

    func run() async throws {
        await queue.run(window: .zero, maxBatch: 512) { batch in await relay(batch) }
    }

    private func relay(_ batch: [Signal]) async {
        do {
            let members = try await membership.members(of: Array(Set(batch.map(\.conversationId))))
            var routes: [LiveRoute] = []
            for signal in batch {
                guard let others = members[signal.conversationId], others.contains(signal.userId) else {
                    signal.connection.send(LiveFrame.error("not_found", "No such conversation, or you are not a member."))
                    continue
                }
                let frame = OutboundFrame.Typing(conversationId: signal.conversationId, userId: signal.userId, typing: signal.typing)
                routes.append(LiveRoute(frame: LiveFrame.encode(frame), recipients: others.filter { $0 != signal.userId }))
            }
            try await router.route(routes)
        } catch {
            // Typing is ephemeral: a lost indicator is replaced by the next one.
            logger.debug("typing not relayed", metadata: ["error": "\(error)"])
        }
    }
}
