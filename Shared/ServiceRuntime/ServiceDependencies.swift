import EventBus
import EventContracts
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

/// What every SwiftChat service stands on: its database (schema, client, outbox and relay), Redis,
/// RabbitMQ, HTTP settings and the access-token verifier. Built from the environment by `main`,
/// or from explicit configurations by tests.
public struct ServiceDependencies: Sendable {
    public let name: String
    /// Prefix of this deployment's queue names and Redis keys (the service name by default;
    /// tests give each run its own so they never share a queue or a cache with another).
    public let namespace: String
    public let logger: Logger
    public let schema: SchemaName
    public let postgres: PostgresClient
    public let redis: RedisClient
    public let amqp: AMQPConfiguration
    public let outbox: Outbox
    public let relay: OutboxRelay
    public let http: HTTPConfiguration
    public let tokenVerifier: AccessTokenVerifier

    public init(
        name: String,
        database: DatabaseConfiguration,
        redis: RedisConfiguration,
        amqp: AMQPConfiguration,
        http: HTTPConfiguration,
        tokenVerifier: AccessTokenVerifier,
        namespace: String? = nil,
        logger: Logger
    ) {
        self.name = name
        self.namespace = namespace ?? name
        self.logger = logger
        self.schema = database.schema
        self.postgres = database.makeClient(logger: logger)
        self.redis = RedisClient(configuration: redis)
        self.amqp = amqp
        self.outbox = Outbox(schema: database.schema)
        self.relay = OutboxRelay(
            client: postgres,
            schema: database.schema,
            publisher: EventPublisher(configuration: amqp, logger: logger),
            logger: logger
        )
        self.http = http
        self.tokenVerifier = tokenVerifier
    }

    /// The long-running pieces every service runs: the Postgres pool and the outbox relay.
    public var coreServices: [any Service] { [postgres, relay] }

    /// `/readyz`: the service's own Postgres, Redis and RabbitMQ.
    public var readinessChecks: [ReadinessCheck] {
        let postgres = postgres
        return [
            ReadinessCheck("postgres") {
                try await postgres.query("SELECT 1")
                return true
            },
            .redis(redis),
            .rabbitMQ(amqp),
        ]
    }

    /// Adds an event from this service to its outbox on `connection`, inside the caller's
    /// transaction: the change and its announcement commit together or not at all.
    public func announce<Payload: EventPayload>(_ payload: Payload, on connection: PostgresConnection, logger: Logger) async throws {
        try await outbox.enqueue(EventEnvelope(producer: name, payload: payload), on: connection, logger: logger)
    }

    /// Runs `work` in a transaction, then wakes the relay so the events it wrote go out at once.
    public func transaction<Result: Sendable>(
        _ work: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let result = try await postgres.transaction(logger: logger) { connection in
            try await work(connection)
        }
        relay.notify()
        return result
    }
}

/// Reads the access-token public key: `JWT_PUBLIC_KEY` (PEM text, e.g. from a Kubernetes Secret)
/// or the file at `JWT_PUBLIC_KEY_PATH` (default: the local stack's generated key).
public func loadTokenVerifier(environment: EnvironmentReader) async throws -> AccessTokenVerifier {
    try await AccessTokenVerifier(publicKeyPEM: try readKey(environment: environment, variable: "JWT_PUBLIC_KEY", file: "jwt-public.pem"))
}

/// A PEM key from `<variable>` or the file at `<variable>_PATH`, defaulting to the local stack's
/// `keys/` folder (`infra/stack.sh` generates the pair once).
public func readKey(environment: EnvironmentReader, variable: String, file: String) throws -> String {
    if let pem = environment.string(variable) { return pem }
    let stack = environment.string("SWIFTCHAT_STACK_DIR", default: FileManager.default.currentDirectoryPath + "/.stack")
    let path = environment.string("\(variable)_PATH", default: "\(stack)/keys/\(file)")
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw ConfigurationError(key: "\(variable)_PATH", value: path, expected: "a readable PEM file (or set \(variable))")
    }
}
