import Hummingbird
import Logging
import Observability
import ServiceConfig
import ServiceLifecycle

/// Where a service listens and which origins its browsers come from.
public struct HTTPConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var allowedOrigins: [String]
    /// The proxies whose `X-Forwarded-For` names the real client.
    public var trustedProxies: TrustedProxies

    public static let localOrigins = ["http://127.0.0.1:8080", "http://localhost:8080"]

    public init(
        host: String = "127.0.0.1", port: Int, allowedOrigins: [String] = HTTPConfiguration.localOrigins,
        trustedProxies: TrustedProxies = try! TrustedProxies(TrustedProxies.loopback)
    ) {
        self.host = host
        self.port = port
        self.allowedOrigins = allowedOrigins
        self.trustedProxies = trustedProxies
    }

    /// `HTTP_HOST`, `HTTP_PORT`, `ALLOWED_ORIGINS` (comma-separated), `TRUSTED_PROXIES` (CIDRs).
    public init(environment: EnvironmentReader, defaultPort: Int) throws {
        self.init(
            host: environment.string("HTTP_HOST", default: "127.0.0.1"),
            port: try environment.port("HTTP_PORT", default: defaultPort),
            allowedOrigins: environment.list("ALLOWED_ORIGINS", default: Self.localOrigins),
            trustedProxies: try TrustedProxies(environment: environment)
        )
    }

    public var originPolicy: OriginPolicy { OriginPolicy(allowedOrigins: allowedOrigins) }
}

/// The router every service starts from: error shape, request logs, metrics, Origin check, and
/// the operational routes. The service adds its own routes (behind `AuthenticationMiddleware`
/// where they need a caller).
public func makeServiceRouter(
    configuration: HTTPConfiguration,
    readiness: ReadinessChecks,
    liveness: [ReadinessCheck] = []
) -> Router<ServiceRequestContext> {
    // Metrics must be bootstrapped before the first request creates its counters.
    _ = Observability.metrics
    let router = Router(context: ServiceRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    router.add(middleware: LogRequestsMiddleware(.info))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: OriginCheckMiddleware(policy: configuration.originPolicy))
    router.add(middleware: ControlCharacterMiddleware())
    router.addOperationalRoutes(readiness: readiness, liveness: liveness)
    return router
}

/// The application: the HTTP server plus the service's long-running work (database client,
/// consumers, outbox relay) in one `ServiceGroup`, shut down gracefully on SIGTERM and SIGINT.
public func makeServiceApplication(
    name: String,
    configuration: HTTPConfiguration,
    router: Router<ServiceRequestContext>,
    services: [any Service],
    admission: UpgradeAdmission = UpgradeAdmission(),
    logger: Logger
) -> some ApplicationProtocol {
    // Live sockets open at most `admission.openings.limit` at a time; the rest of a burst waits
    // in the listen backlog (Linux caps it at net.core.somaxconn, 4096 by default).
    let liveSockets = !admission.isEmpty
    let openings = admission.openings
    return Application(
        router: router,
        server: liveSockets ? .liveSockets(admission: admission) : .http1(),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: name, backlog: liveSockets ? 4096 : 256),
        services: services,
        onServerRunning: { channel in
            guard liveSockets else { return }
            do {
                try await channel.pipeline.addHandler(OpeningGate(limit: openings), position: .first)
            } catch {
                logger.error("the server accepts without its opening limit", metadata: ["error": "\(error)"])
            }
        },
        logger: logger
    )
}

/// A service that must finish its graceful shutdown before the HTTP server starts its own (live
/// sockets closed with "going away" before the server closes what is left as "normal"). A
/// service's `main` runs it beside the application rather than inside it.
public protocol DrainsBeforeServer: Service {}
