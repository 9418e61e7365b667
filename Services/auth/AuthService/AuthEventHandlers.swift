import EventBus
import EventContracts
import Outbox
import ServiceRuntime

/// auth keeps the display name it returns in `user` in step with users' `user.updated`.
struct UserUpdatesHandler: EventHandler {
    enum Event: EventSet {
        case updated(UserUpdated)
        static let cases = [EventCase(UserUpdated.self, Event.updated)]
    }

    let dependencies: ServiceDependencies
    let store: AuthStore

    var subscription: Subscription { Subscription(queue: "\(dependencies.namespace).user-events", kind: .shared(), prefetch: 128) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        let idempotent = IdempotentConsumer(client: dependencies.postgres, consumer: subscription.queue)
        try await idempotent.processBatch(eventIDs: batch.map(\.id), logger: dependencies.logger) { connection, fresh in
            for (item, isFresh) in zip(batch, fresh) where isFresh {
                switch item.event {
                case .updated(let updated):
                    try await store.updateDisplayName(userId: updated.userId, displayName: updated.displayName, on: connection)
                }
            }
        }
        return EventOutcome.done(batch.count)
    }
}

/// The revocation view, written again from auth's own announcements: a session that ended while
/// Redis was away is recorded once it is back (the routes record it at once when they can).
struct RevocationsHandler: EventHandler {
    enum Event: EventSet {
        case signedOut(UserSignedOut)
        case deleted(UserDeleted)
        static let cases = [EventCase(UserSignedOut.self, Event.signedOut), EventCase(UserDeleted.self, Event.deleted)]
    }

    let dependencies: ServiceDependencies
    let tokenLifetime: Duration

    var subscription: Subscription { Subscription(queue: "\(dependencies.namespace).revocations", kind: .shared(), prefetch: 128) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        // Setting a key twice is harmless: no dedupe needed. A Redis outage retries the batch.
        for item in batch {
            switch item.event {
            case .signedOut(let signedOut):
                try await dependencies.revocations.revoke(sessionId: signedOut.sessionId, lifetime: tokenLifetime)
            case .deleted(let deleted):
                try await dependencies.revocations.revokeUser(deleted.userId, at: item.occurredAt, lifetime: tokenLifetime)
            }
        }
        return EventOutcome.done(batch.count)
    }
}
