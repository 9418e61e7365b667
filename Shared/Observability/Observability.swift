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

    /// Structured logs (`key=value` metadata) on standard error at `level`, and metrics bootstrapped.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
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
