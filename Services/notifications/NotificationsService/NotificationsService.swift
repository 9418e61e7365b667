import EventBus
import Foundation
import Hummingbird
import LiveSockets
import PostgresSupport
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// The notifications service: stored notifications in schema `notifications`,
/// `/api/notifications`, and the `/ws/notifications` stream of notifications and presence.
public enum NotificationsService {
    public struct Configuration: Sendable {
        /// This instance's id: its own queue (live pushes) carries it.
        public var instanceId: String
        public var outboundBuffer = 1024
        /// How often open sockets are checked against ended sessions (a sign-out event this
        /// instance missed; the event itself closes them within a second).
        public var revocationSweep: Duration = .seconds(10)
        /// A ping every period; a peer that has not answered the previous one is closed.
        public var pingPeriod: Duration = .seconds(20)

        public init(instanceId: String) {
            self.instanceId = instanceId
        }

        /// `INSTANCE_ID`, by default host name and process id; `WS_PING_SECONDS`.
        public init(environment: EnvironmentReader) throws {
            self.init(
                instanceId: environment.string("INSTANCE_ID", default: "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"))
            pingPeriod = try LiveSocketKeeper.pingPeriod(environment)
        }
    }

    public static let definition = ServiceDefinition(
        name: "notifications",
        defaultSchema: "notifications",
        defaultPort: 8085,
        migrations: migrations,
        build: { dependencies, router in
            try router.addOpenAPIDocument(at: "/api/notifications/openapi.yaml", bundle: .module)
            return build(dependencies: dependencies, configuration: try Configuration(environment: EnvironmentReader()), router: router)
        }
    )

    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "notifications")
    }

    /// Adds the routes and the stream to `router` and returns the consumers.
    public static func build(dependencies: ServiceDependencies, configuration: Configuration, router: Router<ServiceRequestContext>) -> [any Service] {
        let store = NotificationsStore(logger: dependencies.logger)
        let connections = ConnectionRegistry(stream: "notifications")
        let readiness = InstanceReadiness(required: ["instance"])
        dependencies.readiness.add(ReadinessCheck("queues") { readiness.isReady })
        let publisher = EventPublisher(configuration: dependencies.amqp, logger: dependencies.logger)
        NotificationsRoutes(dependencies: dependencies, store: store).add(to: router)
        let quota = SocketQuota(
            redis: dependencies.redis, namespace: dependencies.namespace, stream: "notifications", connections: connections, logger: dependencies.logger
        )
        NotificationSocket(
            verifier: dependencies.tokenVerifier, originPolicy: dependencies.http.originPolicy, connections: connections, ready: readiness,
            admission: dependencies.socketAdmission, quota: quota, outboundBuffer: configuration.outboundBuffer, logger: dependencies.logger
        ).add(to: router)
        return [
            quota,
            LiveSocketKeeper(
                connections: connections, revocations: dependencies.tokenVerifier.revocations, revocationSweep: configuration.revocationSweep,
                pingPeriod: configuration.pingPeriod, quota: quota, logger: dependencies.logger
            ),
            dependencies.consumer(NotificationEventsHandler(dependencies: dependencies, store: store, publisher: publisher)),
            dependencies.consumer(
                NotificationsInstanceHandler(dependencies: dependencies, instanceId: configuration.instanceId, store: store, connections: connections),
                onConsuming: { readiness.markConsuming("instance") }
            ),
        ]
    }
}
