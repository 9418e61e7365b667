import Allocator
import BlockingExecutor
import EventBus
import Foundation
import Hummingbird
import Logging
import Observability
import Outbox
import PostgresNIO
import PostgresSupport
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle
import UnixSignals

/// What one service contributes to the shared start-up sequence.
public struct ServiceDefinition: Sendable {
    public let name: String
    /// The schema it owns by default; nil for a service without tables (no database at all).
    public let defaultSchema: String?
    public let defaultPort: Int
    /// The service's own migrations; the outbox's run first.
    public let migrations: @Sendable () throws -> [Migration]
    /// Adds the service's routes and returns its long-running work (consumers).
    public let build: @Sendable (ServiceDependencies, Router<ServiceRequestContext>) async throws -> [any Service]

    public init(
        name: String,
        defaultSchema: String?,
        defaultPort: Int,
        migrations: @escaping @Sendable () throws -> [Migration] = { [] },
        build: @escaping @Sendable (ServiceDependencies, Router<ServiceRequestContext>) async throws -> [any Service]
    ) {
        self.name = name
        self.defaultSchema = defaultSchema
        self.defaultPort = defaultPort
        self.migrations = migrations
        self.build = build
    }

    /// The whole life of a service process: configuration from the environment, migrations, then
    /// the HTTP server and the service's work in one ServiceGroup until SIGTERM. A start-up failure
    /// (bad configuration, a failing migration) is logged and exits with status 1.
    public func main() async {
        do {
            try await run()
        } catch {
            var logger = Logger(label: name)
            logger.logLevel = .critical
            logger.critical("\(name) cannot start", metadata: ["error": "\(String(reflecting: error))"])
            exit(1)
        }
    }

    /// `SHUTDOWN_GRACE_SECONDS`, 20 by default: how long SIGTERM's graceful drain may take.
    public static func shutdownGrace(_ environment: EnvironmentReader) throws(ConfigurationError) -> Duration {
        try environment.seconds("SHUTDOWN_GRACE_SECONDS", default: 20, in: 0...3_600)
    }

    private func run() async throws {
        let environment = EnvironmentReader()
        let logger = bootstrapProcess(name: name, environment: environment)

        let database = try defaultSchema.map { try DatabaseConfiguration(environment: environment, defaultSchema: $0) }
        let dependencies = ServiceDependencies(
            name: name,
            database: database,
            redis: try RedisConfiguration(environment: environment),
            amqp: try AMQPConfiguration(environment: environment),
            http: try HTTPConfiguration(environment: environment, defaultPort: defaultPort),
            tokenVerifier: try await loadTokenVerifier(environment: environment),
            namespace: environment.string("SERVICE_NAMESPACE"),
            logger: logger
        )
        // The HTTP server answers at once (`/healthz` is alive); the service is ready only once
        // its migrations ran and its work started, however long Postgres or RabbitMQ keep it waiting.
        let started = StartupGate()
        let draining = DrainSignal()
        dependencies.readiness.add(started.check)
        dependencies.readiness.add(draining.check)
        let router = makeServiceRouter(configuration: dependencies.http, readiness: dependencies.readiness, liveness: dependencies.livenessChecks)
        let work = try await build(dependencies, router)
        // Run beside the application, so they shut down before its server does.
        let drainFirst = work.filter { $0 is any DrainsBeforeServer }
        let afterMigrations = AfterMigrations(
            name: name, migrate: { [self] in if let database { try await migrate(database, logger: logger) } },
            services: dependencies.deferredServices + work.filter { !($0 is any DrainsBeforeServer) }, started: started, logger: logger
        )
        let application = makeServiceApplication(
            name: name,
            configuration: dependencies.http,
            router: router,
            services: dependencies.immediateServices + [afterMigrations],
            admission: dependencies.socketAdmission,
            logger: logger
        )
        logger.info(
            "starting",
            metadata: [
                "port": "\(dependencies.http.port)", "schema": "\(database?.schema.rawValue ?? "none")", "allocator": "\(Allocator.described)",
            ])
        // SIGTERM ends the process within its grace period whatever it waits on: graceful first,
        // then cancellation, then (a task that ignores cancellation) a crash, rather than a hang.
        // Shut down last first: readiness turns off, the live sockets say going away, then the
        // application (its server, then its work) drains.
        let services: [any Service] = [application] + drainFirst + [draining]
        var group = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        group.maximumGracefulShutdownDuration = try Self.shutdownGrace(environment)
        group.maximumCancellationDuration = .seconds(5)
        // With a database, every task of the group (and its child tasks) prefers the event loop
        // its Postgres connections live on, and sleeps on its timer; blocking C calls still run on
        // their own threads (`DedicatedThread`, the bcrypt thread pool). Without one there is no
        // round trip to save, and the pool's threads share the work (socket-handler's fan-out was
        // slower on one loop).
        try await LoopTimer.withPreference(dependencies.database?.executor) { try await ServiceGroup(configuration: group).run() }
        await dependencies.redis.shutdown()
    }

    /// Applies the outbox's and the service's migrations on a short-lived client, waiting (with
    /// backoff, saying what it waits for) as long as Postgres is away or starting up. A failing
    /// migration or a refusal (permissions) is an error.
    public func migrate(_ database: DatabaseConfiguration, logger: Logger) async throws {
        let runner = MigrationRunner(schema: database.schema, migrations: try Outbox.migrations() + migrations())
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await database.makeClient(logger: logger).whileRunning { client in try await runner.run(on: client, logger: logger) }
                return
            } catch let error as MigrationError {
                throw error
            } catch  where ServiceDependencies.isTransient(error) {
                logger.warning(
                    "waiting for Postgres to run the migrations",
                    metadata: [
                        "attempt": "\(attempt)", "host": "\(database.host):\(database.port)", "error": "\(String(reflecting: error))",
                    ])
                try await LoopTimer.sleep(for: backoff.next())
            }
        }
    }
}
