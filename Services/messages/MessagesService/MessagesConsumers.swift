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
    static func sentMessages(dependencies: ServiceDependencies, store: MessagesStore) -> EventConsumer {
        let queue = "\(dependencies.namespace).message-sent"
        let topology = Topology.consumer(queue: queue, bindings: [QueueBinding(.messageEvents, MessageSent.eventType)])
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
                    try await MessageSending.store(sends.map(\.send), store: store, outbox: dependencies.outbox, on: connection, logger: logger)
                }
                for (send, result) in zip(sends, results) where result == .notMember {
                    logger.info("refused a send from a non-member", metadata: ["sender": "\(send.send.senderId)", "conversation": "\(send.send.conversationId)"])
                }
            } catch {
                logger.warning("storing a batch failed, it will be redelivered", metadata: ["error": "\(String(reflecting: error))"])
                for (index, _) in sends { outcomes[index] = .retry }
            }
            return outcomes
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
