import EventBus
import Logging
import Observability
import RedisClient
import ServiceConfig
import ServiceHTTP

/// The first thing every service process does: logging at `LOG_LEVEL` and metrics, once.
public func bootstrapProcess(name: String, environment: EnvironmentReader) -> Logger {
    let level = Logger.Level(rawValue: environment.string("LOG_LEVEL", default: "info")) ?? .info
    Observability.bootstrap(level: level)
    var logger = Logger(label: name)
    logger.logLevel = level
    return logger
}

extension ReadinessCheck {
    public static func redis(_ redis: RedisClient) -> ReadinessCheck {
        ReadinessCheck("redis") { try await redis.ping() }
    }

    /// Opens a connection and declares the standard exchanges (idempotent).
    public static func rabbitMQ(_ configuration: AMQPConfiguration) -> ReadinessCheck {
        ReadinessCheck("rabbitmq") {
            try await EventBusAdmin.declare(Topology(), configuration: configuration)
            return true
        }
    }
}
