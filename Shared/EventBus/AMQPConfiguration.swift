import ServiceConfig

/// Where the broker is and how to talk to it. Defaults point at the local stack.
public struct AMQPConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String
    public var virtualHost: String
    /// Heartbeat interval negotiated with the broker; a dead TCP peer is noticed within ~2x this.
    public var heartbeatSeconds: Int
    public var connectTimeout: Duration
    /// How long a publish waits (reconnecting as needed) before it reports failure to the caller.
    public var publishTimeout: Duration
    /// The least time between the starts of two batches of one stage (`BatchPacing`): a
    /// consumer's batches; for a batcher's broker messages and a relay's hand-offs, the first of
    /// each turn (`BatchQueue`). Zero: unpaced.
    public var batchInterval: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 26672,
        username: String = "swiftchat",
        password: String = "swiftchat",
        virtualHost: String = "/",
        heartbeatSeconds: Int = 10,
        connectTimeout: Duration = .seconds(3),
        publishTimeout: Duration = .seconds(10),
        batchInterval: Duration = .milliseconds(10)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.virtualHost = virtualHost
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeout = connectTimeout
        self.publishTimeout = publishTimeout
        self.batchInterval = batchInterval
    }

    /// `AMQP_HOST`, `AMQP_PORT`, `AMQP_USER`, `AMQP_PASSWORD` (or `AMQP_PASSWORD_FILE`), `AMQP_VHOST`, `AMQP_HEARTBEAT_SECONDS`,
    /// `AMQP_PUBLISH_TIMEOUT_SECONDS`, `AMQP_BATCH_INTERVAL_MS`.
    public init(environment: EnvironmentReader) throws {
        let batchIntervalMs = try environment.int("AMQP_BATCH_INTERVAL_MS", default: 10, in: 0...1_000, unit: "milliseconds")
        self.init(
            host: environment.string("AMQP_HOST", default: "127.0.0.1"),
            port: try environment.port("AMQP_PORT", default: 26672),
            username: environment.string("AMQP_USER", default: "swiftchat"),
            password: try environment.secret("AMQP_PASSWORD") ?? "swiftchat",
            virtualHost: environment.string("AMQP_VHOST", default: "/"),
            heartbeatSeconds: try environment.int("AMQP_HEARTBEAT_SECONDS", default: 10, in: 0...65_535, unit: "seconds"),
            publishTimeout: try environment.seconds("AMQP_PUBLISH_TIMEOUT_SECONDS", default: 10, in: 1...3_600),
            batchInterval: .milliseconds(batchIntervalMs)
        )
    }
}
