import EventBus
import EventContracts
import Logging
import Outbox
import ServiceRuntime

/// `message.sent` from socket-handler: each batch of sends (many per broker message, many
/// messages per batch) is stored in one transaction with a fixed number of statements, and its new
/// messages are announced as one `message.stored` batch. Sends are idempotent on (sender,
/// clientMsgId), so a redelivered batch stores nothing twice.
struct SendsHandler: EventHandler {
    enum Event: EventSet {
        case sent(MessageSent)
        static let cases = [EventCase(MessageSent.self, Event.sent)]
    }

    let dependencies: ServiceDependencies
    let store: MessagesStore
    let publisher: EventPublisher

    // One active consumer at a time: with several messages replicas, every conversation's
    // messages are still stored in the order sent; another replica takes over if it dies.
    var subscription: Subscription {
        Subscription(queue: "\(dependencies.namespace).message-sent", kind: .shared(singleActiveConsumer: true), prefetch: 512, batchSize: 256)
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        var outcomes = EventOutcome.done(batch.count)
        var sends: [(index: Int, send: MessageSent)] = []
        var answers: [(instanceId: String, SendAnswered)] = []
        for (index, item) in batch.enumerated() {
            switch item.event {
            case .sent(let send):
                // socket-handler validated it; one that still fails the rules is refused alone.
                guard MessageLimits.problems(clientMsgId: send.clientMsgId, body: send.body).isEmpty else {
                    answers.append((send.instanceId, send.answer(error: "invalid_message")))
                    outcomes[index] = .deadLetter("a send that breaks the message rules")
                    continue
                }
                sends.append((index, send))
            }
        }
        if !sends.isEmpty {
            let results = try await MessageSending.store(sends.map(\.send), store: store, dependencies: dependencies)
            for ((_, send), result) in zip(sends, results) {
                switch result {
                case .stored: break
                case .duplicate(let message) where message.conversationId != send.conversationId:
                    // The clientMsgId was already used by this sender in another conversation.
                    answers.append((send.instanceId, send.answer(error: "client_msg_id_reused")))
                case .duplicate(let message): answers.append((send.instanceId, send.answer(message: message)))
                case .notMember: answers.append((send.instanceId, send.answer(error: "not_found")))
                case .peerDeleted: answers.append((send.instanceId, send.answer(error: "peer_deleted")))
                }
            }
        }
        await MessageSending.answer(answers, publisher: publisher, producer: dependencies.name, logger: dependencies.logger)
        return outcomes
    }

    /// A send that fails on its own (the batch around it was stored): its sender is told at once.
    func isolated(_ item: IncomingEvent<Event>, error: any Error) async {
        switch item.event {
        case .sent(let send):
            await MessageSending.answer(
                [(send.instanceId, send.answer(error: "send_failed"))], publisher: publisher, producer: dependencies.name, logger: dependencies.logger
            )
        }
    }
}

/// `receipt.marked` from socket-handler: a batch of markers moved forward in one statement, the
/// markers that moved announced as one `receipt.updated` batch.
struct ReceiptsHandler: EventHandler {
    enum Event: EventSet {
        case marked(ReceiptMarked)
        static let cases = [EventCase(ReceiptMarked.self, Event.marked)]
    }

    let dependencies: ServiceDependencies
    let store: MessagesStore

    var subscription: Subscription { Subscription(queue: "\(dependencies.namespace).receipts", kind: .shared(), prefetch: 512, batchSize: 256) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        let marks = batch.map { item in
            switch item.event {
            case .marked(let marked): marked
            }
        }
        // Markers only move forward, so a redelivered batch changes nothing: no dedupe needed.
        try await dependencies.transaction { connection in
            let changes = try await store.advanceMarkers(marks, on: connection)
            guard !changes.isEmpty else { return }
            let members = try await store.members(of: Array(Set(changes.map(\.conversationId))), on: connection)
            let updates = changes.map { change in
                ReceiptUpdated(
                    conversationId: change.conversationId, userId: change.userId, deliveredSeq: change.deliveredSeq, readSeq: change.readSeq,
                    memberIds: members[change.conversationId]?.live ?? []
                )
            }
            try await dependencies.announce(batch: updates, on: connection, logger: dependencies.logger)
        }
        return EventOutcome.done(batch.count)
    }
}

/// The users messages knows: only existing users can join a conversation; a deleted one stays in
/// its conversations, marked (its messages stay for the others).
struct UserEventsHandler: EventHandler {
    enum Event: EventSet {
        case registered(UserRegistered)
        case deleted(UserDeleted)
        static let cases = [EventCase(UserRegistered.self, Event.registered), EventCase(UserDeleted.self, Event.deleted)]
    }

    let dependencies: ServiceDependencies
    let store: MessagesStore

    var subscription: Subscription { Subscription(queue: "\(dependencies.namespace).user-events", kind: .shared(), prefetch: 128) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        let idempotent = IdempotentConsumer(client: dependencies.postgres, consumer: subscription.queue)
        try await idempotent.processBatch(eventIDs: batch.map(\.id), logger: dependencies.logger) { connection, fresh in
            for (item, isFresh) in zip(batch, fresh) where isFresh {
                switch item.event {
                case .registered(let registered): try await store.rememberUser(id: registered.userId, username: registered.username, on: connection)
                case .deleted(let deleted):
                    // A group never loses its last admin: its longest-standing member takes over.
                    for group in try await store.markDeleted(id: deleted.userId, on: connection) {
                        _ = try await store.lock(group, on: connection)
                        guard let successor = try await store.promoteSuccessor(in: group, on: connection),
                            let details = try await store.details(of: group, on: connection)
                        else { continue }
                        let changed = ConversationRoleChanged(conversation: details.snapshot, userId: successor, role: "admin", actorId: nil)
                        try await dependencies.announce(changed, on: connection, logger: dependencies.logger)
                    }
                }
            }
        }
        return EventOutcome.done(batch.count)
    }
}

extension MessageSent {
    func answer(message: MessageRecord? = nil, error: String? = nil) -> SendAnswered {
        SendAnswered(senderId: senderId, clientMsgId: clientMsgId, conversationId: conversationId, message: message, error: error)
    }
}
