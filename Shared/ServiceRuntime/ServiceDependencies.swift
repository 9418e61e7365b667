import BlockingExecutor
import EventBus
import EventContracts
import Foundation
import Hummingbird
import Logging
import NIOPosix
import Observability
import Outbox
import PostgresNIO
import PostgresSupport
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle

/// What every SwiftChat service stands on: RabbitMQ, Redis, HTTP settings, the access-token
/// verifier, and (for a service with tables) its database: schema, client, outbox and relay.
/// Built from the environment by `main`, or from explicit configurations by tests. A service
/// starts only the parts it has: socket-handler has no database, so no pool and no relay.
public struct ServiceDependencies: Sendable {
    public let name: String
    /// Prefix of this deployment's queue names and Redis keys (the service name by default;
    /// tests give each run its own so they never share a queue or a cache with another).
    public let namespace: String
    public let logger: Logger
    public let redis: RedisClient
    public let amqp: AMQPConfiguration
    public let http: HTTPConfiguration
    /// Verifies access tokens, and refuses those of sessions that ended (the shared revocation view).
    public let tokenVerifier: AccessTokenVerifier
    /// Nil for a service that owns no tables.
    public let database: Database?
    /// The checks of this service's websocket paths, asked before an upgrade (so a refused one is
    /// an answer in the error shape).
    public let socketAdmission = UpgradeAdmission()
    /// A service's own schema, its pool, and the outbox that announces what it commits.
    public struct Database: Sendable {
        public let schema: SchemaName
        public let client: PostgresClient
        /// The event loop the pool's connections live on, for the service's own work too: `main`
        /// runs the service group with it as the preferred task executor, so a query's reply
        /// resumes the task that waits for it on the thread that read it, instead of waking a pool
        /// thread (measured: half the context switches of messages and notifications at 100 msg/s).
        public let executor: EventLoopTaskExecutor
        public let outbox: Outbox
        public let relay: OutboxRelay
    }

    public init(
        name: String,
        database: DatabaseConfiguration?,
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
        let redis = RedisClient(configuration: redis)
        self.redis = redis
        self.amqp = amqp
        self.http = http
        self.tokenVerifier = tokenVerifier.checkingRevocations(SessionRevocationRegistry(redis: redis, logger: logger))
        self.database = database.map { configuration in
            let executor = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.any())
            let client = configuration.makeClient(logger: logger, eventLoopGroup: executor.eventLoop)
            return Database(
                schema: configuration.schema,
                client: client,
                executor: executor,
                outbox: Outbox(),
                relay: OutboxRelay(
                    client: client, schema: configuration.schema, publisher: EventPublisher(configuration: amqp, logger: logger), logger: logger
                )
            )
        }
        if let database = self.database {
            readiness.add(
                ReadinessCheck("postgres") {
                    try await database.client.query("SELECT 1")
                    return true
                })
        }
    }

    private var requiredDatabase: Database {
        guard let database else { preconditionFailure("\(name) was built without a database but uses one") }
        return database
    }

    public var schema: SchemaName { requiredDatabase.schema }
    public var postgres: PostgresClient { requiredDatabase.client }
    public var outbox: Outbox { requiredDatabase.outbox }
    public var relay: OutboxRelay { requiredDatabase.relay }

    /// The long-running pieces of the parts this service has: the Postgres pool and the relay.
    public var coreServices: [any Service] { immediateServices + deferredServices }

    /// What runs from the first moment: the Postgres pool (it connects when Postgres is there).
    public var immediateServices: [any Service] { database.map { [$0.client] } ?? [] }

    /// What needs the schema migrated first: the outbox relay.
    public var deferredServices: [any Service] { database.map { [$0.relay] } ?? [] }

    /// What `/readyz` asks: only what this pod cannot serve a request without, its Postgres, plus
    /// what its parts add (a socket instance: its queues consuming). A Redis or RabbitMQ outage is
    /// ridden out (the cache is bypassed, the outbox waits, the consumers reconnect), so it does not
    /// take the pod out of the gateway.
    public let readiness = ReadinessChecks()

    /// What `/healthz` asks: nothing of another server, only whether this process is stuck (an
    /// outbox relay whose round never returns), which a restart cures.
    public var livenessChecks: [ReadinessCheck] {
        guard let database else { return [] }
        return [ReadinessCheck("outbox-relay") { !database.relay.isStalled }]
    }

    /// Where sessions that ended are recorded (auth writes, every service reads).
    public var revocations: SessionRevocationRegistry { SessionRevocationRegistry(redis: redis, logger: logger) }

    /// Runs `handler` on its queue with this service's connection settings and failure rules.
    public func consumer<Handler: EventHandler>(_ handler: Handler, onConsuming: (@Sendable () -> Void)? = nil) -> EventConsumer<Handler> {
        EventConsumer(configuration: amqp, handler: handler, logger: logger, isTransient: Self.isTransient, onConsuming: onConsuming)
    }

    /// Whether a failure says a server is away (retry the work later, whole) rather than that the
    /// work itself is wrong (isolate it): lost connections, timeouts, a server shutting down,
    /// deadlocks and serialization failures.
    public static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return true }
            // 08: connection exception; 40001/40P01: serialization failure, deadlock; 53: out of
            // resources (too many connections); 57P0x: the server is shutting down or restarting.
            return state.hasPrefix("08") || state == "40001" || state == "40P01" || state.hasPrefix("53") || state.hasPrefix("57P0")
        case let error as RedisError:
            return error.code == .connectionFailed || error.code == .connectionLost
        default:
            return EventBusFailure.isTransient(error)
        }
    }

    /// Adds an event from this service to its outbox on `connection`, inside the caller's
    /// transaction: the change and its announcement commit together or not at all.
    public func announce<Payload: EventPayload>(_ payload: Payload, on connection: PostgresConnection, logger: Logger) async throws {
        try await outbox.enqueue(EventEnvelope(producer: name, payload: payload), on: connection, logger: logger)
    }

    /// Several events of one type as batch envelopes of at most `eventsPerEnvelope` each: one
    /// outbox row and one broker message per envelope, all in one statement. The cap keeps a broker
    /// message far below the broker's size limit (a stored message names up to 1,024 members).
    public func announce<Payload: EventPayload>(batch payloads: [Payload], on connection: PostgresConnection, logger: Logger) async throws {
        try await outbox.enqueue(try announcements(batch: payloads), on: connection, logger: logger)
    }

    /// The outbox rows `announce(batch:)` writes, for a statement that writes them itself along
    /// with its change (see `Outbox.insertion`).
    public func announcements<Payload: EventPayload>(batch payloads: [Payload]) throws -> [OutgoingMessage] {
        try stride(from: 0, to: payloads.count, by: Self.eventsPerEnvelope).map { start in
            try OutgoingMessage(EventBatchEnvelope(producer: name, payloads: Array(payloads[start..<min(start + Self.eventsPerEnvelope, payloads.count)])))
        }
    }

    public static let eventsPerEnvelope = 256

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
