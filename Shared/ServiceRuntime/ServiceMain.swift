import EventBus
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Observability
import Outbox
import PostgresNIO
import PostgresSupport
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle

/// What one service contributes to the shared start-up sequence.
public struct ServiceDefinition: Sendable {
    public let name: String
    public let defaultSchema: String
    public let defaultPort: Int
    /// Set for services that accept websocket upgrades.
    public let webSockets: WebSocketServerConfiguration?
    /// The service's own migrations; the outbox's run first.
    public let migrations: @Sendable () throws -> [Migration]
    /// Adds the service's routes and returns its long-running work (consumers).
    public let build: @Sendable (ServiceDependencies, Router<ServiceRequestContext>) async throws -> [any Service]

    public init(
        name: String,
        defaultSchema: String,
        defaultPort: Int,
        webSockets: WebSocketServerConfiguration? = nil,
        migrations: @escaping @Sendable () throws -> [Migration],
        build: @escaping @Sendable (ServiceDependencies, Router<ServiceRequestContext>) async throws -> [any Service]
    ) {
        self.name = name
        self.defaultSchema = defaultSchema
        self.defaultPort = defaultPort
        self.webSockets = webSockets
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

    private func run() async throws {
        let environment = EnvironmentReader()
        let logger = bootstrapProcess(name: name, environment: environment)

        let database = try DatabaseConfiguration(environment: environment, defaultSchema: defaultSchema)
        try await migrate(database, logger: logger)

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
        let router = makeServiceRouter(configuration: dependencies.http, readiness: dependencies.readinessChecks)
        let work = try await build(dependencies, router)
        let application = makeServiceApplication(
            name: name,
            configuration: dependencies.http,
            router: router,
            services: dependencies.coreServices + work,
            webSockets: webSockets,
            logger: logger
        )
        logger.info("starting", metadata: ["port": "\(dependencies.http.port)", "schema": "\(database.schema)"])
        try await application.runService()
        await dependencies.redis.shutdown()
    }

    /// Applies the outbox's and the service's migrations on a short-lived client, before anything
    /// else starts, retrying while Postgres is still coming up.
    public func migrate(_ database: DatabaseConfiguration, logger: Logger) async throws {
        let runner = MigrationRunner(schema: database.schema, migrations: try Outbox.migrations() + migrations())
        var delay = Duration.milliseconds(200)
        for attempt in 1...30 {
            let client = database.makeClient(logger: logger)
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await client.run() }
                    defer { group.cancelAll() }
                    try await runner.run(on: client, logger: logger)
                }
                return
            } catch let error as PSQLError where error.code == .server {
                // The server answered: a real error (permissions, SQL), not a server still starting.
                throw error
            } catch let error as MigrationError {
                throw error
            } catch {
                logger.warning("database not ready, retrying", metadata: ["attempt": "\(attempt)", "error": "\(String(reflecting: error))"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        throw MigrationError(migrationID: "*", reason: "the database stayed unreachable")
    }
}
