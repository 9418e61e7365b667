import EventBus
import EventContracts
import LiveSockets
import Logging
import Outbox
import PostgresNIO
import ServiceRuntime

/// What notifications keeps and stores, from both exchanges, a batch at a time in one transaction,
/// each event applied once (processed ids recorded in the same transaction; stored messages that
/// reach no one offline change nothing and are answered by one read). One active consumer,
/// so member snapshots and counts are applied in the order announced: stored messages are applied
/// together (one statement for a run of them), every other event in its place between them.
struct NotificationEventsHandler: EventHandler {
    enum Event: EventSet {
        case stored(MessageStored)
        case receipt(ReceiptUpdated)
        case created(ConversationCreated)
        case memberAdded(ConversationMemberAdded)
        case memberRemoved(ConversationMemberRemoved)
        case renamed(ConversationRenamed)
        case roleChanged(ConversationRoleChanged)
        case presence(PresenceChanged)
        case contactAdded(ContactAdded)
        case contactRemoved(ContactRemoved)
        case loggedIn(UserLoggedIn)
        case deleted(UserDeleted)

        static let cases = [
            EventCase(MessageStored.self, Event.stored), EventCase(ReceiptUpdated.self, Event.receipt),
            EventCase(ConversationCreated.self, Event.created), EventCase(ConversationMemberAdded.self, Event.memberAdded),
            EventCase(ConversationMemberRemoved.self, Event.memberRemoved), EventCase(ConversationRenamed.self, Event.renamed),
            EventCase(ConversationRoleChanged.self, Event.roleChanged), EventCase(PresenceChanged.self, Event.presence),
            EventCase(ContactAdded.self, Event.contactAdded),
            EventCase(ContactRemoved.self, Event.contactRemoved), EventCase(UserLoggedIn.self, Event.loggedIn),
            EventCase(UserDeleted.self, Event.deleted),
        ]
    }

    let dependencies: ServiceDependencies
    let store: NotificationsStore
    let publisher: EventPublisher

    var subscription: Subscription {
        Subscription(queue: "\(dependencies.namespace).events", kind: .shared(singleActiveConsumer: true), prefetch: 512, batchSize: 256)
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        // A batch of stored messages alone (the busy case) first reads who they reach is offline,
        // outside a transaction: this one consumer applies presence, so the read sees what the
        // transaction would. When no one is, the batch changes nothing here and nothing is
        // recorded, as an event that changed nothing cannot be applied twice: one round trip for
        // the batch instead of a transaction of four and a processed row per message.
        let allStored = batch.compactMap { item -> MessageStored? in if case .stored(let stored) = item.event { stored } else { nil } }
        let knownOffline: Set<String>?
        if allStored.count == batch.count {
            let offline = try await dependencies.postgres.withConnection { try await store.offlineRecipients(of: allStored, on: $0) }
            guard !offline.isEmpty else { return EventOutcome.done(batch.count) }
            knownOffline = offline
        } else {
            knownOffline = nil
        }
        let rules = NotificationRules(store: store)
        let idempotent = IdempotentConsumer(client: dependencies.postgres, consumer: subscription.queue)
        let changed = try await idempotent.processBatch(eventIDs: batch.map(\.id), logger: dependencies.logger) { connection, fresh in
            var changed: [(userId: String, NotificationRecord)] = []
            var messages: [MessageStored] = []
            for (item, isFresh) in zip(batch, fresh) where isFresh {
                if case .stored(let stored) = item.event {
                    messages.append(stored)
                    continue
                }
                if !messages.isEmpty {
                    changed += try await store.recordMessages(messages, on: connection)
                    messages = []
                }
                changed += try await rules.apply(item.event, at: item.occurredAt, on: connection)
            }
            if !messages.isEmpty { changed += try await store.recordMessages(messages, offline: knownOffline, on: connection) }
            return changed
        }
        await push(changed)
        return EventOutcome.done(batch.count)
    }

    /// Tells every notifications instance about the changed notifications, after the commit, in
    /// one broker message. Best effort: the notifications are stored either way, and a client
    /// fetches what it missed.
    private func push(_ changed: [(userId: String, NotificationRecord)]) async {
        guard !changed.isEmpty else { return }
        do {
            let batch = EventBatchEnvelope(producer: dependencies.name, payloads: changed.map { NotificationChanged(userId: $0.userId, notification: $0.1) })
            _ = try await publisher.publish([OutgoingMessage(batch)])
        } catch {
            dependencies.logger.warning("could not push notifications live; clients will fetch them", metadata: ["error": "\(error)"])
        }
    }
}

/// This instance's own queue: changed notifications and presence for the sockets it holds, and
/// ended sessions (a signed-out session's sockets close, and every socket of a deleted account).
struct NotificationsInstanceHandler: EventHandler {
    enum Event: EventSet {
        case changed(NotificationChanged)
        case presence(PresenceChanged)
        case signedOut(UserSignedOut)
        case deleted(UserDeleted)

        static let cases = [
            EventCase(NotificationChanged.self, Event.changed), EventCase(PresenceChanged.self, Event.presence),
            EventCase(UserSignedOut.self, Event.signedOut), EventCase(UserDeleted.self, Event.deleted),
        ]
    }

    let dependencies: ServiceDependencies
    let instanceId: String
    let store: NotificationsStore
    let connections: ConnectionRegistry

    var subscription: Subscription {
        Subscription(queue: "\(dependencies.namespace).instance.\(instanceId)", kind: .instance(id: instanceId), prefetch: 512, batchSize: 256)
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        for item in batch {
            switch item.event {
            case .changed(let changed):
                connections.send(LiveFrame.encode(NotificationFrame.Notification(notification: changed.notification)), to: [changed.userId])
            case .presence(let presence):
                await push(presence)
            case .signedOut(let signedOut):
                connections.close(sessionId: signedOut.sessionId, of: signedOut.userId, reason: "signed out")
            case .deleted(let deleted):
                connections.closeAll(of: deleted.userId, reason: "account deleted")
            }
        }
        return EventOutcome.done(batch.count)
    }

    /// Presence goes to the users here who share a conversation or a contact with them. A live
    /// frame is not worth a redelivery loop: without the database it is dropped.
    private func push(_ presence: PresenceChanged) async {
        let here = connections.connectedUsers
        guard !here.isEmpty else { return }
        do {
            let audience = try await store.audience(of: presence.userId, among: here, on: dependencies.postgres)
            guard !audience.isEmpty else { return }
            let frame = NotificationFrame.Presence(userId: presence.userId, online: presence.online, lastSeenAt: presence.lastSeenAt)
            connections.send(LiveFrame.encode(frame), to: audience)
        } catch {
            dependencies.logger.warning("presence not pushed: its audience could not be read", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
