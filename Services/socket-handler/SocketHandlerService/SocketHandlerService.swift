import EventBus
import Foundation
import Hummingbird
import HummingbirdWebSocket
import LiveSockets
import Logging
import Observability
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// socket-handler: the live chat connections (`/ws/chat`). It owns no tables: sends go to
/// messages as `message.sent`, and stored messages come back to the instances where their
/// recipients are connected (presence registry in Redis, direct exchange per instance).
public enum SocketHandlerService {
    public struct Configuration: Sendable {
        public var name = "socket-handler"
        /// This instance's id: its presence entries and its delivery queue carry it.
        public var instanceId: String
        /// Prefix of queue names and Redis keys (tests give each run its own).
        public var namespace = "socket-handler"
        public var presenceTTL: Duration = .seconds(30)
        public var heartbeat: Duration = .seconds(10)
        /// How long a user whose last connection closed stays online, so quick reconnects are quiet.
        public var presenceGrace: Duration = .seconds(5)
        public var limits = ChatSocketLimits()

        public init(instanceId: String) {
            self.instanceId = instanceId
        }
    }

    /// What the service runs on: no database, so not `ServiceDependencies`.
    public struct Dependencies: Sendable {
        public let redis: RedisClient
        public let amqp: AMQPConfiguration
        public let http: HTTPConfiguration
        public let tokenVerifier: AccessTokenVerifier
        public let logger: Logger

        public init(redis: RedisClient, amqp: AMQPConfiguration, http: HTTPConfiguration, tokenVerifier: AccessTokenVerifier, logger: Logger) {
            self.redis = redis
            self.amqp = amqp
            self.http = http
            self.tokenVerifier = tokenVerifier
            self.logger = logger
        }

        public var readinessChecks: [ReadinessCheck] { [.redis(redis), .rabbitMQ(amqp)] }
    }

    /// Adds `/ws/chat` to `router` and returns the instance's long-running work.
    public static func build(
        dependencies: Dependencies,
        configuration: Configuration,
        router: Router<ServiceRequestContext>
    ) -> [any Service] {
        let logger = dependencies.logger
        let connections = ConnectionRegistry()
        let presence = PresenceRegistry(
            redis: dependencies.redis, namespace: configuration.namespace, instanceId: configuration.instanceId, ttl: configuration.presenceTTL,
            grace: configuration.presenceGrace
        )
        let publisher = EventPublisher(configuration: dependencies.amqp, logger: logger)
        let membership = MembershipCache(redis: dependencies.redis, namespace: configuration.namespace)
        let liveRouter = LiveRouter(presence: presence, membership: membership, publisher: publisher, logger: logger)
        let readiness = InstanceReadiness(required: ["instance", "message-events", PresenceAnnouncer.readinessKey])
        let announcer = PresenceAnnouncer(
            registry: presence, connections: connections, publisher: publisher, timing: .init(heartbeat: configuration.heartbeat),
            readiness: readiness, logger: logger
        )
        ChatSocket(
            verifier: dependencies.tokenVerifier, originPolicy: dependencies.http.originPolicy, connections: connections,
            presence: announcer, membership: membership, router: liveRouter, publisher: publisher,
            instanceId: configuration.instanceId, limits: configuration.limits, ready: readiness, logger: logger
        ).add(to: router)
        return [
            SocketConsumers.instance(
                configuration: dependencies.amqp, namespace: configuration.namespace, instanceId: configuration.instanceId,
                connections: connections, logger: logger, onConsuming: { readiness.markConsuming("instance") }
            ),
            SocketConsumers.messageEvents(
                configuration: dependencies.amqp, namespace: configuration.namespace, router: liveRouter, logger: logger,
                onConsuming: { readiness.markConsuming("message-events") }
            ),
            announcer,
        ]
    }

    /// The process: configuration from the environment, then the server until SIGTERM.
    public static func main() async {
        let environment = EnvironmentReader()
        let logger = bootstrapProcess(name: "socket-handler", environment: environment)
        do {
            var configuration = Configuration(
                instanceId: environment.string("INSTANCE_ID", default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)")
            )
            configuration.namespace = environment.string("SOCKET_NAMESPACE", default: configuration.namespace)
            configuration.presenceTTL = .seconds(try environment.int("PRESENCE_TTL_SECONDS", default: 30))
            configuration.heartbeat = .seconds(try environment.int("PRESENCE_HEARTBEAT_SECONDS", default: 10))
            configuration.presenceGrace = .seconds(try environment.int("PRESENCE_GRACE_SECONDS", default: 5))
            let dependencies = Dependencies(
                redis: RedisClient(configuration: try RedisConfiguration(environment: environment)),
                amqp: try AMQPConfiguration(environment: environment),
                http: try HTTPConfiguration(environment: environment, defaultPort: 8084),
                tokenVerifier: try await loadTokenVerifier(environment: environment),
                logger: logger
            )
            let router = makeServiceRouter(configuration: dependencies.http, readiness: dependencies.readinessChecks)
            try router.addOpenAPIDocument(at: "/ws/chat/openapi.yaml", bundle: .module)
            let work = build(dependencies: dependencies, configuration: configuration, router: router)
            let application = makeServiceApplication(
                name: "socket-handler", configuration: dependencies.http, router: router, services: work,
                webSockets: .liveSockets(pingPeriod: .seconds(try environment.int("WS_PING_SECONDS", default: 20))), logger: logger
            )
            logger.info("starting", metadata: ["instance": "\(configuration.instanceId)", "port": "\(dependencies.http.port)"])
            try await application.runService()
            await dependencies.redis.shutdown()
        } catch {
            logger.critical("socket-handler cannot start", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }
}
