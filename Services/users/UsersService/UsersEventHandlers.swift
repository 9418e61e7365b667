import EventBus
import EventContracts
import Outbox
import ServiceRuntime

/// users' copy of every user follows `UserEvents`: registered, deleted, presence changes, a batch
/// at a time in one transaction, each event applied once; the query cache is invalidated once per
/// batch that changed anything.
struct UserEventsHandler: EventHandler {
    enum Event: EventSet {
        case registered(UserRegistered)
        case deleted(UserDeleted)
        case presence(PresenceChanged)

        static let cases = [
            EventCase(UserRegistered.self, Event.registered), EventCase(UserDeleted.self, Event.deleted),
            EventCase(PresenceChanged.self, Event.presence),
        ]
    }

    let dependencies: ServiceDependencies
    let store: UsersStore
    let cache: UserQueryCache

    var subscription: Subscription { Subscription(queue: "\(dependencies.namespace).user-events", kind: .shared(), prefetch: 256) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        let idempotent = IdempotentConsumer(client: dependencies.postgres, consumer: subscription.queue)
        let applied = try await idempotent.processBatch(eventIDs: batch.map(\.id), logger: dependencies.logger) { connection, fresh in
            let accounts = zip(batch, fresh).compactMap { item, isFresh in isFresh ? item.event.registeredOrDeleted : nil }
            if !accounts.isEmpty { try await store.lockAccounts(accounts, on: connection) }
            for (item, isFresh) in zip(batch, fresh) where isFresh {
                switch item.event {
                case .registered(let registered):
                    try await store.insertProfile(
                        id: registered.userId, username: registered.username, displayName: registered.displayName,
                        createdAt: registered.createdAt, on: connection
                    )
                case .deleted(let deleted):
                    try await store.deleteProfile(id: deleted.userId, on: connection)
                case .presence(let presence):
                    try await store.setPresence(id: presence.userId, online: presence.online, at: presence.lastSeenAt, on: connection)
                }
            }
            return fresh.contains(true)
        }
        if applied { await cache.invalidate() }
        return EventOutcome.done(batch.count)
    }
}

extension UserEventsHandler.Event {
    /// The account a registration or a deletion is about; nil for a presence change.
    var registeredOrDeleted: String? {
        switch self {
        case .registered(let registered): registered.userId
        case .deleted(let deleted): deleted.userId
        case .presence: nil
        }
    }
}
