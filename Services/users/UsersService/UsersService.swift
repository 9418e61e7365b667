import Foundation
import Hummingbird
import PostgresSupport
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// The users service: profiles, presence and contacts in schema `users`, `/api/users`.
public enum UsersService {
    public static let definition = ServiceDefinition(
        name: "users",
        defaultSchema: "users",
        defaultPort: 8082,
        migrations: migrations,
        build: { dependencies, router in try build(dependencies: dependencies, router: router) }
    )

    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "users")
    }

    /// Adds users' routes to `router` and returns its long-running work.
    public static func build(dependencies: ServiceDependencies, router: Router<ServiceRequestContext>) throws -> [any Service] {
        let store = UsersStore(logger: dependencies.logger)
        let cache = UserQueryCache(redis: dependencies.redis, namespace: dependencies.namespace, logger: dependencies.logger)
        try router.addOpenAPIDocument(at: "/api/users/openapi.yaml", bundle: .module)
        UsersRoutes(dependencies: dependencies, store: store, cache: cache).add(to: router)
        return [dependencies.consumer(UserEventsHandler(dependencies: dependencies, store: store, cache: cache))]
    }
}
