import EventBus
import Foundation
import Hummingbird
import PostgresSupport
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime

/// The messages service: conversations, members, messages and receipts in schema `messages`,
/// `/api/conversations`.
public enum MessagesService {
    public static let definition = ServiceDefinition(
        name: "messages",
        defaultSchema: "messages",
        defaultPort: 8083,
        migrations: migrations,
        build: { dependencies, router in try build(dependencies: dependencies, router: router) }
    )

    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "messages")
    }

    /// Adds the routes to `router` and returns the consumers.
    public static func build(dependencies: ServiceDependencies, router: Router<ServiceRequestContext>) throws -> [any Service] {
        let store = MessagesStore(logger: dependencies.logger)
        try router.addOpenAPIDocument(at: "/api/conversations/openapi.yaml", bundle: .module)
        MessagesRoutes(dependencies: dependencies, store: store).add(to: router)
        let publisher = EventPublisher(configuration: dependencies.amqp, logger: dependencies.logger)
        return [
            dependencies.consumer(UserEventsHandler(dependencies: dependencies, store: store)),
            dependencies.consumer(SendsHandler(dependencies: dependencies, store: store, publisher: publisher)),
            dependencies.consumer(ReceiptsHandler(dependencies: dependencies, store: store)),
        ]
    }
}
