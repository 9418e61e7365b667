import Logging
import PostgresNIO
import ServiceConfig

/// How a service reaches Postgres, and which schema it owns.
public struct DatabaseConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var database: String
    public var username: String
    public var password: String
    /// The one schema this service owns; every table it touches is qualified with it.
    public var schema: SchemaName
    public var maximumConnections: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 54329,
        database: String = "swiftchat",
        username: String,
        password: String,
        schema: SchemaName,
        maximumConnections: Int = 20
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.schema = schema
        self.maximumConnections = maximumConnections
    }

    /// `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`, `DATABASE_USER`, `DATABASE_PASSWORD`,
    /// `DATABASE_SCHEMA`, `DATABASE_POOL_SIZE`. The local stack gives each service a role named
    /// `swiftchat_<schema>` with the same password, which are the defaults.
    public init(environment: EnvironmentReader, defaultSchema: String) throws {
        let schema = try SchemaName(environment.string("DATABASE_SCHEMA", default: defaultSchema))
        self.init(
            host: environment.string("DATABASE_HOST", default: "127.0.0.1"),
            port: try environment.int("DATABASE_PORT", default: 54329),
            database: environment.string("DATABASE_NAME", default: "swiftchat"),
            username: environment.string("DATABASE_USER", default: "swiftchat_\(schema)"),
            password: environment.string("DATABASE_PASSWORD", default: "swiftchat_\(schema)"),
            schema: schema,
            maximumConnections: try environment.int("DATABASE_POOL_SIZE", default: 20)
        )
    }

    /// A pooled client; it is a `Service`: run it in the service group before using it.
    public func makeClient(logger: Logger) -> PostgresClient {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: .disable
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(30))
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }
}

/// A validated schema name, safe to splice into SQL as an identifier.
public struct SchemaName: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(ConfigurationError) {
        let valid = !rawValue.isEmpty && rawValue.count <= 63
            && rawValue.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(rawValue.utf8.first! >= 48 && rawValue.utf8.first! <= 57)
        guard valid else {
            throw ConfigurationError(key: "DATABASE_SCHEMA", value: rawValue, expected: "a lowercase identifier ([a-z_][a-z0-9_]*)")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
