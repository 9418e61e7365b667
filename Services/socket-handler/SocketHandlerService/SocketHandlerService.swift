import EventBus
import EventContracts
import Foundation
import Hummingbird
import LiveSockets
import Logging
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// socket-handler: the live chat connections (`/ws/chat`). It owns no tables: sends go to
/// messages as `message.sent` batches, and stored messages come back to the instances where their
/// recipients are connected (presence registry in Redis, direct exchange per instance).
public enum SocketHandlerService {
    public struct Configuration: Sendable {
        /// This instance's id: its presence entries and its delivery queue carry it.
        public var instanceId: String
        public var presenceTTL: Duration = .seconds(30)
        public var heartbeat: Duration = .seconds(10)
        /// How long a user whose last connection closed stays online, so quick reconnects are quiet.
        public var presenceGrace: Duration = .seconds(5)
        public var limits = ChatSocketLimits()

        public init(instanceId: String) {
            self.instanceId = instanceId
        }

        /// `INSTANCE_ID` (host name and process id by default), `PRESENCE_TTL_SECONDS`,
        /// `PRESENCE_HEARTBEAT_SECONDS`, `PRESENCE_GRACE_SECONDS`.
        /// `WS_PING_SECONDS`.
        public init(environment: EnvironmentReader) throws(ConfigurationError) {
            self.init(
                instanceId: environment.string("INSTANCE_ID", default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"))
            presenceTTL = try environment.seconds("PRESENCE_TTL_SECONDS", default: 30, in: 2...3_600)
            heartbeat = try environment.seconds("PRESENCE_HEARTBEAT_SECONDS", default: 10, in: 1...3_600)
            // A refresh comes on the keeper's first look after the heartbeat is due and takes a
            // Redis round trip, so an entry must outlive two heartbeats not to lapse between them.
            guard heartbeat * 2 <= presenceTTL else {
                // Name the setting that was given: the heartbeat when it was, else the TTL.
                let heartbeatSeconds = heartbeat.components.seconds
                let ttlSeconds = presenceTTL.components.seconds
                if environment.string("PRESENCE_HEARTBEAT_SECONDS") != nil {
                    throw ConfigurationError(
                        key: "PRESENCE_HEARTBEAT_SECONDS", value: "\(heartbeatSeconds)", expected: "at most half of PRESENCE_TTL_SECONDS (\(ttlSeconds))")
                }
                throw ConfigurationError(
                    key: "PRESENCE_TTL_SECONDS", value: "\(ttlSeconds)", expected: "at least twice PRESENCE_HEARTBEAT_SECONDS (\(heartbeatSeconds))")
            }
            presenceGrace = try environment.seconds("PRESENCE_GRACE_SECONDS", default: 5, in: 0...3_600)
            limits.pingPeriod = try LiveSocketKeeper.pingPeriod(environment)
        }
    }

    public static let definition = ServiceDefinition(
        name: "socket-handler",
        defaultSchema: nil,
        defaultPort: 8084,
        build: { dependencies, router in
            try router.addOpenAPIDocument(at: "/ws/chat/openapi.yaml", bundle: .module)
            return build(dependencies: dependencies, configuration: try Configuration(environment: EnvironmentReader()), router: router)
        }
    )

    /// Adds `/ws/chat` to `router` and returns the instance's long-running work.
    public static func build(dependencies: ServiceDependencies, configuration: Configuration, router: Router<ServiceRequestContext>) -> [any Service] {
        let logger = dependencies.logger
        let namespace = dependencies.namespace
        let connections = ConnectionRegistry(stream: "chat")
        let presence = PresenceRegistry(
            redis: dependencies.redis, namespace: namespace, instanceId: configuration.instanceId, ttl: configuration.presenceTTL,
            grace: configuration.presenceGrace
        )
        let publisher = EventPublisher(configuration: dependencies.amqp, logger: logger)
        let membership = MembershipCache(redis: dependencies.redis, namespace: namespace)
        // Live frames go out on a connection of their own: their confirms (a transient queue's,
        // quick) never wait behind those of the sends (a quorum queue's, written to disk).
        let liveRouter = LiveRouter(
            presence: presence, publisher: EventPublisher(configuration: dependencies.amqp, logger: logger), connections: connections,
            producer: dependencies.name, logger: logger
        )
        let readiness = InstanceReadiness(required: ["instance", "message-events", PresenceAnnouncer.readinessKey])
        dependencies.readiness.add(ReadinessCheck("queues") { readiness.isReady })
        let announcer = PresenceAnnouncer(
            registry: presence, connections: connections, publisher: publisher, timing: .init(heartbeat: configuration.heartbeat),
            readiness: readiness, logger: logger
        )
        let sends = EventBatcher<MessageSent>(publisher: publisher, producer: dependencies.name, logger: logger) { failed, reason in
            logger.warning("sends not accepted by the broker", metadata: ["count": "\(failed.count)", "reason": "\(reason)"])
            connections.refuse(failed)
        }
        let receipts = EventBatcher<ReceiptMarked>(publisher: publisher, producer: dependencies.name, logger: logger) { failed, reason in
            // Markers are up-to values: the next one a client sends covers this one.
            logger.warning("receipts not accepted by the broker", metadata: ["count": "\(failed.count)", "reason": "\(reason)"])
        }
        let typing = TypingRelay(membership: membership, router: liveRouter, logger: logger)
        let quota = SocketQuota(
            redis: dependencies.redis, namespace: namespace, stream: "chat", limit: configuration.limits.socketsPerUser, connections: connections,
            logger: logger
        )
        let socket = ChatSocket(
            verifier: dependencies.tokenVerifier, originPolicy: dependencies.http.originPolicy, connections: connections,
            presence: announcer, sends: sends, receipts: receipts, typing: typing,
            instanceId: configuration.instanceId, limits: configuration.limits, ready: readiness, admission: dependencies.socketAdmission,
            quota: quota, logger: logger
        )
        socket.add(to: router)
        return [
            quota,
            LiveSocketKeeper(
                connections: connections, deadline: configuration.limits.writeDeadline, revocations: dependencies.tokenVerifier.revocations,
                revocationSweep: configuration.limits.revocationSweep, pingPeriod: configuration.limits.pingPeriod, quota: quota, logger: logger,
                closed: socket.closed
            ),
            dependencies.consumer(
                InstanceHandler(namespace: namespace, instanceId: configuration.instanceId, connections: connections),
                onConsuming: { readiness.markConsuming("instance") }
            ),
            dependencies.consumer(
                LiveRouteHandler(namespace: namespace, router: liveRouter, membership: membership, logger: logger),
                onConsuming: { readiness.markConsuming("message-events") }
            ),
            announcer, sends, receipts, typing,
        ]
    }
}
