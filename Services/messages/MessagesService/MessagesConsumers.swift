import EventBus
import EventContracts
import Logging
import Outbox
import PostgresSupport
import ServiceRuntime

enum MessagesConsumers {
    /// `message.sent`, stored in batches: every delivery that has arrived (up to the batch size)
    /// is stored in one transaction, one commit and one fsync for the lot (group commit). Sends are
    /// idempotent on (sender, clientMsgId), so a redelivered batch stores nothing twice.
    static func sentMessages(dependencies: ServiceDependencies, store: MessagesStore, publisher: EventPublisher) -> EventConsumer {
        let queue = "\(dependencies.namespace).message-sent"
        // One active consumer at a time: with several messages replicas, a sender's messages are
        // still stored in the order sent; another replica takes over if the active one dies.
        let topology = Topology.consumer(queue: queue, bindings: [QueueBinding(.messageEvents, MessageSent.eventType)], singleActiveConsumer: true)
        let logger = dependencies.logger
        return EventConsumer(
            configuration: dependencies.amqp, topology: topology, queue: queue, prefetch: 512, batchSize: 256, logger: logger
        ) { deliveries in
            var outcomes = [DeliveryOutcome](repeating: .ack, count: deliveries.count)
            var sends: [(index: Int, send: MessageSent)] = []
            for (index, delivery) in deliveries.enumerated() {
                do {
                    guard let sent = try delivery.event().decode(MessageSent.self)?.payload else { continue }  // not ours
                    guard MessageLimits.problems(clientMsgId: sent.clientMsgId, body: sent.body).isEmpty else {
                        logger.warning("dropping an invalid send", metadata: ["sender": "\(sent.senderId)"])
                        continue
                    }
                    sends.append((index, sent))
                } catch {
                    outcomes[index] = .deadLetter
                }
            }
            guard !sends.isEmpty else { return outcomes }
            do {
                let results = try await dependencies.transaction { connection in
                    try await MessageSending.store(sends.map(\.send), store: store, dependencies: dependencies, on: connection, logger: logger)
                }
                for (send, result) in zip(sends, results) where result == .notMember {
                    await reject(send.send, publisher: publisher, producer: dependencies.name, logger: logger)
                }
            } catch {
                logger.warning("storing a batch failed, it will be redelivered", metadata: ["error": "\(String(reflecting: error))"])
                for (index, _) in sends { outcomes[index] = .retry }
            }
            return outcomes
        }
    }

    /// Tells the sender's instance that a send was refused. Best effort, not through the outbox:
    /// the error is only useful to a connection that is still waiting, and one that misses it
    /// retries and is refused again.
    private static func reject(_ send: MessageSent, publisher: EventPublisher, producer: String, logger: Logger) async {
        logger.info("refused a send from a non-member", metadata: ["sender": "\(send.senderId)", "conversation": "\(send.conversationId)"])
        guard !send.instanceId.isEmpty else { return }
        let rejected = MessageRejected(senderId: send.senderId, clientMsgId: send.clientMsgId, conversationId: send.conversationId, reason: "not_found")
        do {
            var message = try OutgoingMessage(EventEnvelope(producer: producer, payload: rejected))
            message.routingKey = send.instanceId
            _ = try await publisher.publish([message])
        } catch {
            logger.debug("could not tell the sender's instance about a refused send", metadata: ["error": "\(error)"])
        }
    }

    /// `receipt.marked`: markers move forward only; a change is announced as `receipt.updated`.
    static func receipts(dependencies: ServiceDependencies, store: MessagesStore) -> EventConsumer {
        let queue = "\(dependencies.namespace).receipts"
        let topology = Topology.consumer(queue: queue, bindings: [QueueBinding(.messageEvents, ReceiptMarked.eventType)])
        let logger = dependencies.logger
        return EventConsumer(configuration: dependencies.amqp, topology: topology, queue: queue, prefetch: 128, logger: logger) { delivery in
            guard let marked = try delivery.event().decode(ReceiptMarked.self)?.payload else { return }
            // Markers are idempotent by nature (forward only): a redelivery changes nothing.
            try await dependencies.transaction { connection in
                guard let markers = try await store.advanceMarkers(
                    of: marked.userId, in: marked.conversationId, delivered: marked.deliveredSeq, read: marked.readSeq, on: connection
                ), markers.changed else { return }
                let updated = ReceiptUpdated(
                    conversationId: marked.conversationId, userId: marked.userId, deliveredSeq: markers.delivered, readSeq: markers.read,
                    memberIds: try await store.memberIds(of: marked.conversationId, on: connection)
                )
                try await dependencies.announce(updated, on: connection, logger: logger)
            }
        }
    }

    /// The users messages knows: only existing users can join a conversation; a deleted one leaves all.
    static func userEvents(dependencies: ServiceDependencies, store: MessagesStore) -> EventConsumer {
        let queue = "\(dependencies.namespace).user-events"
        let topology = Topology.consumer(queue: queue, bindings: [
            QueueBinding(.userEvents, UserRegistered.eventType),
            QueueBinding(.userEvents, UserDeleted.eventType),
        ])
        let idempotent = IdempotentConsumer(client: dependencies.postgres, schema: dependencies.schema, consumer: queue)
        let logger = dependencies.logger
        return EventConsumer(configuration: dependencies.amqp, topology: topology, queue: queue, logger: logger) { delivery in
            let event = try delivery.event()
            _ = try await idempotent.process(eventID: event.header.id, logger: logger) { connection in
                if let registered = try event.decode(UserRegistered.self)?.payload {
                    try await store.rememberUser(id: registered.userId, username: registered.username, on: connection)
                } else if let deleted = try event.decode(UserDeleted.self)?.payload {
                    try await store.forgetUser(id: deleted.userId, on: connection)
                }
            }
        }
    }
}
