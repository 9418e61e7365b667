import EventBus
import EventContracts
import Foundation
import Logging
import PostgresNIO
import ServiceRuntime

/// Storing sends and announcing them: one code path for the websocket path (`message.sent`
/// events, a batch at a time) and the HTTP send path.
enum MessageSending {
    /// Stores the sends in order on `connection` (inside the caller's transaction) and announces
    /// the new messages as one `message.stored` batch: one outbox row, one broker message.
    static func store(
        _ sends: [MessageSent],
        store: MessagesStore,
        dependencies: ServiceDependencies,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [SendResult] {
        let results = try await store.store(sends, at: Date(), on: connection)
        var stored: [MessageStored] = []
        for (send, result) in zip(sends, results) {
            guard case .stored(let message, let memberIds) = result else { continue }
            stored.append(MessageStored(message: message, memberIds: memberIds, senderInstance: send.instanceId.isEmpty ? nil : send.instanceId))
        }
        try await dependencies.announce(batch: stored, on: connection, logger: logger)
        return results
    }

    /// Answers the senders of sends that stored nothing new (a retry gets its message again, a
    /// refusal its error), one broker message per socket-handler instance. Best effort, after the
    /// commit and not through the outbox: only a connection still waiting needs it, and one that
    /// misses it sends again and is answered again.
    static func answer(_ answers: [(instanceId: String, SendAnswered)], publisher: EventPublisher, producer: String, logger: Logger) async {
        let byInstance = Dictionary(grouping: answers.filter { !$0.instanceId.isEmpty }, by: \.instanceId)
        guard !byInstance.isEmpty else { return }
        do {
            let messages = try byInstance.map { instance, answers in try OutgoingMessage.toInstance(instance, producer: producer, answers.map(\.1)) }
            _ = try await publisher.publish(messages)
        } catch {
            logger.debug("could not answer senders directly; they will retry", metadata: ["error": "\(error)"])
        }
    }
}
