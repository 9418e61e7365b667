import ServiceConfig

public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Connections in the pool; commands are spread over them round-robin.
    public var poolSize: Int
    public var connectTimeout: Duration
    /// Per-command socket timeout: a Redis that stops answering fails the call instead of hanging it.
    public var commandTimeout: Duration
    /// `AUTH` on connect, for a Redis that requires it (a managed one); `username` for an ACL user.
    public var username: String?
    public var password: String?

    public init(
        host: String = "127.0.0.1",
        port: Int = 26379,
        poolSize: Int = 4,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(2),
        username: String? = nil,
        password: String? = nil
    ) {
        self.host = host
        self.port = port
        self.poolSize = max(1, poolSize)
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.username = username
        self.password = password
    }

    /// `REDIS_HOST`, `REDIS_PORT`, `REDIS_POOL_SIZE`, `REDIS_TIMEOUT_MS`, `REDIS_USERNAME` and
    /// `REDIS_PASSWORD` (or `REDIS_PASSWORD_FILE`, a mounted secret).
    public init(environment: EnvironmentReader) throws {
        self.init(
            host: environment.string("REDIS_HOST", default: "127.0.0.1"),
            port: try environment.port("REDIS_PORT", default: 26379),
            poolSize: try environment.int("REDIS_POOL_SIZE", default: 4, in: 1...256),
            commandTimeout: .milliseconds(try environment.int("REDIS_TIMEOUT_MS", default: 2000, in: 1...3_600_000, unit: "milliseconds")),
            username: environment.string("REDIS_USERNAME"),
            password: try environment.secret("REDIS_PASSWORD")
        )
    }
}

public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionLost, serverError, unexpectedReply }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke or timed out during a command: whether it ran is unknown.
        public static let connectionLost = Code(.connectionLost)
        /// Redis answered with an error reply (wrong type, syntax…).
        public static let serverError = Code(.serverError)
        /// A reply of a shape the caller did not expect.
        public static let unexpectedReply = Code(.unexpectedReply)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// A reply from Redis.
public enum RedisValue: Sendable, Equatable {
    case null
    case string(String)
    case integer(Int)
    case array([RedisValue])

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var integer: Int? {
        switch self {
        case .integer(let value): return value
        case .string(let value): return Int(value)
        default: return nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var isNull: Bool { self == .null }
}
