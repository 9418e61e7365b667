import EventBus
import EventContracts
import Logging
import Outbox
import ServiceRuntime

/// users' copy of every user follows `UserEvents`: registered, deleted, presence changes.
enum UserEventsConsumer {
    static func make(dependencies: ServiceDependencies, store: UsersStore, cache: UserQueryCache) -> EventConsumer {
        let queue = "\(dependencies.namespace).user-events"
        let topology = Topology.consumer(queue: queue, bindings: [
            QueueBinding(.userEvents, UserRegistered.eventType),
            QueueBinding(.userEvents, UserDeleted.eventType),
            QueueBinding(.userEvents, PresenceChanged.eventType),
        ])
        let idempotent = IdempotentConsumer(client: dependencies.postgres, schema: dependencies.schema, consumer: queue)
        let logger = dependencies.logger
        return EventConsumer(configuration: dependencies.amqp, topology: topology, queue: queue, logger: logger) { delivery in
            let event = try delivery.event()
            let outcome = try await idempotent.process(eventID: event.header.id, logger: logger) { connection in
                if let registered = try event.decode(UserRegistered.self)?.payload {
                    try await store.insertProfile(
                        id: registered.userId, username: registered.username, displayName: registered.displayName,
                        createdAt: registered.createdAt, on: connection
                    )
                } else if let deleted = try event.decode(UserDeleted.self)?.payload {
                    try await store.deleteProfile(id: deleted.userId, on: connection)
                } else if let presence = try event.decode(PresenceChanged.self)?.payload {
                    try await store.setPresence(id: presence.userId, online: presence.online, at: presence.lastSeenAt, on: connection)
                }
            }
            if outcome == .applied { await cache.invalidate() }
        }
    }
}
