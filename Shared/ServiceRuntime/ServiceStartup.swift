import Logging
import Observability
import ServiceConfig

/// The first thing every service process does: logging at `LOG_LEVEL` in `LOG_FORMAT` (`text`, or
/// `json` for one object a line) and metrics, once.
public func bootstrapProcess(name: String, environment: EnvironmentReader) -> Logger {
    let level = Logger.Level(rawValue: environment.string("LOG_LEVEL", default: "info")) ?? .info
    let format = Observability.LogFormat(rawValue: environment.string("LOG_FORMAT", default: "text")) ?? .text
    Observability.bootstrap(level: level, format: format)
    var logger = Logger(label: name)
    logger.logLevel = level
    return logger
}
