import Logging
import NIOSSL
import PostgresNIO
import ServiceConfig

/// How a service reaches Postgres, and which schema it owns.
public struct DatabaseConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: String
    public var username: String
    public var password: String
    /// The one schema this service owns: every connection's `search_path`.
    public var schema: SchemaName
    public var maximumConnections: Int
    /// How long a connection may sit idle before the pool checks it with a query; `nil`: never.
    public var keepAlive: Duration?
    public var tls: TLSMode

    /// Connections a process may hold unless `DATABASE_POOL_SIZE` says otherwise.
    public static let defaultMaximumConnections = 20
    /// Seconds idle before a connection is checked unless `DATABASE_KEEPALIVE_SECONDS` says otherwise.
    public static let defaultKeepAliveSeconds = 30
    /// The longest keep-alive that can run: PostgresNIO closes a connection idle for its idle
    /// timeout (60 s by default, which `clientConfiguration()` keeps) before a longer one would.
    public static let longestKeepAliveSeconds = Int(PostgresClient.Configuration.Options().connectionIdleTimeout.components.seconds) - 1

    /// How the connection to Postgres is protected.
    public enum TLSMode: Sendable, Equatable {
        /// Plain TCP (the local stack, on loopback).
        case disable
        /// TLS, without checking the server's certificate.
        case require
        /// TLS, the certificate checked against the CA in this file and the host name.
        case verifyFull(caPath: String)
    }

    public init(
        host: String = "127.0.0.1",
        port: Int = 25432,
        database: String = "swiftchat",
        username: String,
        password: String,
        schema: SchemaName,
        maximumConnections: Int = Self.defaultMaximumConnections,
        keepAlive: Duration? = .seconds(Self.defaultKeepAliveSeconds),
        tls: TLSMode = .disable
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.schema = schema
        self.maximumConnections = maximumConnections
        self.keepAlive = keepAlive
        self.tls = tls
    }

    /// `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`, `DATABASE_USER`, `DATABASE_PASSWORD` (or
    /// `DATABASE_PASSWORD_FILE`), `DATABASE_SCHEMA`, `DATABASE_POOL_SIZE` (connections this process
    /// may hold), `DATABASE_KEEPALIVE_SECONDS` (after how long idle a connection is checked, 30; 0:
    /// never), `DATABASE_TLS` (`disable`, `require` or `verify-full` with `DATABASE_TLS_CA_PATH`).
    /// The defaults are the local stack's: a role per service named `swiftchat_<schema>`, with the
    /// same password.
    public init(environment: EnvironmentReader, defaultSchema: String) throws {
        let schema = try SchemaName(environment.string("DATABASE_SCHEMA", default: defaultSchema))
        let tls: TLSMode
        switch environment.string("DATABASE_TLS", default: "disable") {
        case "disable": tls = .disable
        case "require": tls = .require
        case "verify-full":
            guard let caPath = environment.string("DATABASE_TLS_CA_PATH") else {
                throw ConfigurationError(key: "DATABASE_TLS_CA_PATH", value: "", expected: "the CA file to check the server's certificate against")
            }
            tls = .verifyFull(caPath: caPath)
        case let other: throw ConfigurationError(key: "DATABASE_TLS", value: other, expected: "disable, require or verify-full")
        }
        let maximumConnections = try environment.int(
            "DATABASE_POOL_SIZE", default: Self.defaultMaximumConnections, in: 1...1_000)
        let keepAlive = try environment.seconds(
            "DATABASE_KEEPALIVE_SECONDS", default: Self.defaultKeepAliveSeconds, in: 0...Self.longestKeepAliveSeconds)
        self.init(
            host: environment.string("DATABASE_HOST", default: "127.0.0.1"),
            port: try environment.port("DATABASE_PORT", default: 25432),
            database: environment.string("DATABASE_NAME", default: "swiftchat"),
            username: environment.string("DATABASE_USER", default: "swiftchat_\(schema)"),
            password: try environment.secret("DATABASE_PASSWORD") ?? "swiftchat_\(schema)",
            schema: schema,
            maximumConnections: maximumConnections,
            keepAlive: keepAlive > .zero ? keepAlive : nil,
            tls: tls
        )
    }

    /// A pooled client; it is a `Service`: run it in the service group before using it. A service
    /// passes its own event loop (`ServiceDependencies.Database.executor`) so its connections live there.
    public func makeClient(logger: Logger, eventLoopGroup: any EventLoopGroup = PostgresClient.defaultEventLoopGroup) -> PostgresClient {
        PostgresClient(configuration: clientConfiguration(), eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
    }

    /// PostgresNIO's settings for this configuration.
    ///
    /// No minimum of connections kept open: with one, PostgresNIO 1.33.2's pool can trap
    /// (`createNewDemandConnectionIfPossible`'s precondition, reproduced) when a lease needs a new
    /// connection while the pool refills its minimum after an outage. So each connection parked
    /// idle starts a keep-alive and an idle-timeout timer. The keep-alive stays on: without it a
    /// connection that died silently is found only by the next query on it. Both were measured
    /// (docs/benchmark-history.md, "PostgresNIO's pool timers").
    public func clientConfiguration() -> PostgresClient.Configuration {
        let clientTLS: PostgresClient.Configuration.TLS
        switch tls {
        case .disable:
            clientTLS = .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            clientTLS = .require(configuration)
        case .verifyFull(let caPath):
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(caPath)
            configuration.certificateVerification = .fullVerification
            clientTLS = .require(configuration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: clientTLS
        )
        configuration.options.maximumConnections = maximumConnections
        // Every statement's unqualified names are the service's own schema's, set once per
        // connection; the schema also names the connection in `pg_stat_activity`
        // (`application_name`). Custom plans for every statement: the batch statements take arrays
        // of 1 to hundreds of items, and a cached generic plan is made once, when the tables may
        // still be empty (a new deployment; every bench run). One such plan (a hash join over all
        // messages to find a batch's retries) cost 8.5 ms a batch after 150,000 messages, against
        // 0.3 ms planned for the batch at hand.
        configuration.options.additionalStartupParameters = [
            ("search_path", schema.rawValue), ("application_name", schema.rawValue), ("plan_cache_mode", "force_custom_plan"),
        ]
        configuration.options.keepAliveBehavior = keepAlive.map { .init(frequency: $0) }
        return configuration
    }
}

/// A validated schema name, safe to splice into SQL as an identifier.
public struct SchemaName: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ConfigurationError) {
        let valid =
            !rawValue.isEmpty && rawValue.count <= 63
            && rawValue.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(rawValue.utf8.first! >= 48 && rawValue.utf8.first! <= 57)
        guard valid else {
            throw ConfigurationError(key: "DATABASE_SCHEMA", value: rawValue, expected: "a lowercase identifier ([a-z_][a-z0-9_]*)")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
