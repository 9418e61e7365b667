import Foundation
import Hummingbird
import HummingbirdBcrypt
import NIOPosix
import PostgresSupport
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// The auth service: credentials, sessions and refresh tokens in schema `auth`, `/api/auth`.
public enum AuthService {
    public static let definition = ServiceDefinition(
        name: "auth",
        defaultSchema: "auth",
        defaultPort: 8081,
        migrations: migrations,
        build: { dependencies, router in
            let environment = EnvironmentReader()
            let privateKey = try readKey(environment: environment, variable: "JWT_PRIVATE_KEY", file: "jwt-private.pem")
            let configuration = try AuthConfiguration(environment: environment, privateKeyPEM: privateKey)
            return try await build(dependencies: dependencies, configuration: configuration, router: router)
        }
    )

    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "auth")
    }

    /// Adds auth's routes to `router` and returns its long-running work.
    public static func build(
        dependencies: ServiceDependencies,
        configuration: AuthConfiguration,
        router: Router<ServiceRequestContext>
    ) async throws -> [any Service] {
        let store = AuthStore(logger: dependencies.logger)
        let passwords = PasswordHasher(cost: configuration.bcryptCost)
        let dummyHash = try await passwords.hash("not-a-real-password")
        let routes = AuthRoutes(
            dependencies: dependencies,
            configuration: configuration,
            store: store,
            issuer: try await TokenIssuer(configuration: configuration),
            limiter: LoginRateLimiter(
                redis: dependencies.redis,
                namespace: dependencies.namespace,
                maxPerAccount: configuration.maxFailuresPerAccount,
                maxPerAddress: configuration.maxFailuresPerAddress,
                window: configuration.failureWindow,
                logger: dependencies.logger
            ),
            passwords: passwords,
            dummyHash: dummyHash
        )
        routes.add(to: router)
        try router.addOpenAPIDocument(at: "/api/auth/openapi.yaml", bundle: .module)
        return [
            dependencies.consumer(UserUpdatesHandler(dependencies: dependencies, store: store)),
            dependencies.consumer(RevocationsHandler(dependencies: dependencies, tokenLifetime: configuration.accessTokenLifetime)),
        ]
    }
}
