import Hummingbird
import HummingbirdWebSocket
import Logging
import Observability
import ServiceConfig
import ServiceLifecycle

/// Where a service listens and which origins its browsers come from.
public struct HTTPConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var allowedOrigins: [String]

    public static let localOrigins = ["http://127.0.0.1:8080", "http://localhost:8080"]

    public init(host: String = "127.0.0.1", port: Int, allowedOrigins: [String] = HTTPConfiguration.localOrigins) {
        self.host = host
        self.port = port
        self.allowedOrigins = allowedOrigins
    }

    /// `HTTP_HOST`, `HTTP_PORT`, `ALLOWED_ORIGINS` (comma-separated).
    public init(environment: EnvironmentReader, defaultPort: Int) throws {
        self.init(
            host: environment.string("HTTP_HOST", default: "127.0.0.1"),
            port: try environment.int("HTTP_PORT", default: defaultPort),
            allowedOrigins: environment.list("ALLOWED_ORIGINS", default: Self.localOrigins)
        )
    }

    public var originPolicy: OriginPolicy { OriginPolicy(allowedOrigins: allowedOrigins) }
}

/// The router every service starts from: error shape, request logs, metrics, Origin check, and
/// the operational routes. The service adds its own routes (behind `AuthenticationMiddleware`
/// where they need a caller).
public func makeServiceRouter(
    configuration: HTTPConfiguration,
    readiness: [ReadinessCheck]
) -> Router<ServiceRequestContext> {
    // Metrics must be bootstrapped before the first request creates its counters.
    _ = Observability.metrics
    let router = Router(context: ServiceRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: LogRequestsMiddleware(.info))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: OriginCheckMiddleware(policy: configuration.originPolicy))
    router.addOperationalRoutes(readiness: readiness)
    return router
}

/// The application: the HTTP server plus the service's long-running work (database client,
/// consumers, outbox relay) in one `ServiceGroup`, shut down gracefully on SIGTERM and SIGINT.
public func makeServiceApplication(
    name: String,
    configuration: HTTPConfiguration,
    router: Router<ServiceRequestContext>,
    services: [any Service],
    webSockets: WebSocketServerConfiguration? = nil,
    logger: Logger
) -> some ApplicationProtocol {
    Application(
        router: router,
        server: webSockets.map { .http1WebSocketUpgrade(webSocketRouter: router, configuration: $0) } ?? .http1(),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: name),
        services: services,
        logger: logger
    )
}
