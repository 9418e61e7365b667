import EventBus
import EventContracts
import Logging
import Outbox
import ServiceRuntime

/// auth keeps the display name it returns in `user` in step with users' `user.updated`.
enum AuthEventsConsumer {
    static func make(dependencies: ServiceDependencies, store: AuthStore) -> EventConsumer {
        let queue = "\(dependencies.namespace).user-events"
        let topology = Topology.consumer(queue: queue, bindings: [QueueBinding(.userEvents, UserUpdated.eventType)])
        let idempotent = IdempotentConsumer(client: dependencies.postgres, schema: dependencies.schema, consumer: queue)
        let logger = dependencies.logger
        return EventConsumer(configuration: dependencies.amqp, topology: topology, queue: queue, logger: logger) { delivery in
            let event = try delivery.event()
            guard let updated = try event.decode(UserUpdated.self) else { return }  // not ours: skip
            _ = try await idempotent.process(eventID: event.header.id, logger: logger) { connection in
                try await store.updateDisplayName(userId: updated.payload.userId, displayName: updated.payload.displayName, on: connection)
            }
        }
    }
}
