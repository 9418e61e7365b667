import BlockingExecutor
import EventBus
import EventContracts
import Foundation
import LiveSockets
import Logging
import ServiceLifecycle

/// Keeps the presence registry true and announces `presence.changed`: refreshes this instance's
/// entries on a heartbeat, settles users whose grace period ran out, hands over the users of
/// instances that stopped beating, and publishes every change in order, retrying while the broker
/// is away.
final class PresenceAnnouncer: Service {
    struct Timing: Sendable {
        var heartbeat: Duration
        /// How often due offline announcements and lapsed instances are looked for.
        var sweep: Duration = .seconds(1)
    }

    private let registry: PresenceRegistry
    private let connections: ConnectionRegistry
    private let publisher: EventPublisher
    private let timing: Timing
    private let readiness: InstanceReadiness
    private let logger: Logger
    private let changes: AsyncStream<PresenceChanged>
    private let continuation: AsyncStream<PresenceChanged>.Continuation

    init(
        registry: PresenceRegistry, connections: ConnectionRegistry, publisher: EventPublisher, timing: Timing,
        readiness: InstanceReadiness, logger: Logger
    ) {
        self.registry = registry
        self.connections = connections
        self.publisher = publisher
        self.timing = timing
        self.readiness = readiness
        self.logger = logger
        (changes, continuation) = AsyncStream.makeStream(of: PresenceChanged.self)
    }

    /// The readiness key this service marks once it has taken over its own earlier state.
    static let readinessKey = "presence"

    /// A user's first connection on this instance opened.
    func connected(_ userId: String) async {
        do {
            if let since = try await registry.connected(userId) {
                continuation.yield(PresenceChanged(userId: userId, online: true, lastSeenAt: since))
            }
        } catch {
            logger.warning("presence registry unavailable; this user gets no live delivery until it returns", metadata: ["error": "\(error)"])
        }
    }

    /// A user's last connection on this instance closed.
    func disconnected(_ userId: String) async {
        do { try await registry.disconnected(userId) } catch {
            logger.warning("presence registry unavailable; the heartbeat lapse will settle this user", metadata: ["error": "\(error)"])
        }
    }

    func run() async throws {
        await takeOverEarlierState()
        readiness.markConsuming(Self.readinessKey)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.publishChanges() }
            await cancelWhenGracefulShutdown { await self.maintain() }
            continuation.finish()
            await group.waitForAll()
        }
    }

    /// An instance restarted under the same id: users it held before are settled like a crash's.
    private func takeOverEarlierState() async {
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                _ = try await registry.reapDeadInstances(including: registry.instanceId)
                return
            } catch {
                logger.warning("presence registry unavailable at start", metadata: ["error": "\(error)"])
                try? await LoopTimer.sleep(for: backoff.next())
            }
        }
    }

    private func maintain() async {
        var nextHeartbeat = ContinuousClock.now
        var failing = false
        while !Task.isCancelled {
            do {
                // After an outage or a restart that emptied Redis (however short), every
                // connection here is registered again at the first sweep that reaches Redis,
                // not at the next heartbeat.
                var lost = failing
                if !lost { lost = try await !registry.holdsThisInstance() }
                if lost || ContinuousClock.now >= nextHeartbeat {
                    try await registry.refresh(connections.connectedUsers)
                    if lost { logger.info("presence registry back; this instance's users registered again") }
                    failing = false
                    nextHeartbeat = .now + timing.heartbeat
                }
                let handedOver = try await registry.reapDeadInstances()
                if handedOver > 0 { logger.info("settling the users of a lapsed instance", metadata: ["users": "\(handedOver)"]) }
                for (userId, lastSeen) in try await registry.settleDue() {
                    continuation.yield(PresenceChanged(userId: userId, online: false, lastSeenAt: lastSeen))
                }
            } catch {
                failing = true
                logger.warning("presence upkeep failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { [timing] in try await LoopTimer.sleep(for: timing.sweep) }
        }
    }

    /// Publishes changes in order; a change nobody listens for is done, a failure is retried.
    private func publishChanges() async {
        for await change in changes {
            var backoff = Backoff(maximum: .seconds(5))
            let envelope = EventEnvelope(producer: "socket-handler", payload: change)
            while true {
                do {
                    let message = try OutgoingMessage(envelope)
                    if try await publisher.publish([message]).first != .nacked { break }
                } catch {
                    logger.warning("could not announce a presence change; retrying", metadata: ["error": "\(error)"])
                }
                // Shutting down: what is left is settled by the other instances' sweeps (or this
                // one's next start), so do not hold the shutdown up retrying.
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                try? await LoopTimer.sleep(for: backoff.next())
            }
        }
    }
}
