import Logging
import Metrics
import Prometheus

/// Process-wide logging and metrics set-up, done once at start-up by each service's `main`.
public enum Observability {
    /// The Prometheus registry behind `swift-metrics`; created and bootstrapped on first use, once
    /// per process (MetricsSystem can only be bootstrapped once).
    public static let metrics: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    public enum LogFormat: String, Sendable {
        /// `key=value` metadata, for people reading a terminal.
        case text
        /// One JSON object a line, for log collectors.
        case json
    }

    /// Structured logs on standard error at `level` in `format`, and metrics bootstrapped.
    public static func bootstrap(level: Logger.Level, format: LogFormat = .text) {
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, level: level)
            }
        }
        _ = metrics
    }

    /// The metrics in Prometheus text format.
    public static func renderMetrics() -> String {
        var buffer: [UInt8] = []
        metrics.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
