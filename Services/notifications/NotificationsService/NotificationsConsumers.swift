import EventBus
import EventContracts
import LiveSockets
import Logging
import Outbox
import ServiceRuntime

enum NotificationsConsumers {
    /// What notifications keeps and stores, from both exchanges, applied once per event. One
    /// active consumer, so member snapshots and counts are applied in the order announced.
    static func events(dependencies: ServiceDependencies, store: NotificationsStore, publisher: EventPublisher) -> EventConsumer {
        let queue = "\(dependencies.namespace).events"
        let bindings = [
            MessageStored.eventType, ReceiptUpdated.eventType, ConversationCreated.eventType, ConversationMemberAdded.eventType,
            ConversationMemberRemoved.eventType, ConversationRenamed.eventType,
        ].map { QueueBinding(.messageEvents, $0) } + [
            PresenceChanged.eventType, ContactAdded.eventType, ContactRemoved.eventType, UserLoggedIn.eventType, UserDeleted.eventType,
        ].map { QueueBinding(.userEvents, $0) }
        let topology = Topology.consumer(queue: queue, bindings: bindings, singleActiveConsumer: true)
        let idempotent = IdempotentConsumer(client: dependencies.postgres, schema: dependencies.schema, consumer: queue)
        let logger = dependencies.logger
        return EventConsumer(configuration: dependencies.amqp, topology: topology, queue: queue, prefetch: 64, logger: logger) { delivery in
            let event = try delivery.event()
            let changed = try await idempotent.processReturning(eventID: event.header.id, logger: logger) { connection in
                try await NotificationRules(store: store).apply(event, at: event.header.occurredAt, on: connection)
            }
            await push(changed ?? [], publisher: publisher, logger: logger)
        }
    }

    /// Tells every notifications instance about changed notifications, after the commit. Best
    /// effort: the notification is stored either way, and a client fetches what it missed.
    private static func push(_ changed: [(userId: String, NotificationRecord)], publisher: EventPublisher, logger: Logger) async {
        guard !changed.isEmpty else { return }
        do {
            let messages = try changed.map { try OutgoingMessage(EventEnvelope(producer: "notifications", payload: NotificationChanged(userId: $0.userId, notification: $0.1))) }
            _ = try await publisher.publish(messages)
        } catch {
            logger.warning("could not push notifications live; clients will fetch them", metadata: ["error": "\(error)"])
        }
    }

    /// This instance's own queue: changed notifications and presence for the sockets it holds,
    /// and signouts (the signed-out session's sockets close).
    static func instance(
        dependencies: ServiceDependencies, instanceId: String, store: NotificationsStore, connections: ConnectionRegistry,
        onConsuming: @escaping @Sendable () -> Void
    ) -> EventConsumer {
        let queue = "\(dependencies.namespace).instance.\(instanceId)"
        let topology = Topology.instance(queue: queue, routingKey: instanceId, extraBindings: [
            QueueBinding(.userEvents, NotificationChanged.eventType),
            QueueBinding(.userEvents, PresenceChanged.eventType),
            QueueBinding(.userEvents, UserSignedOut.eventType),
        ])
        let logger = dependencies.logger
        return EventConsumer(
            configuration: dependencies.amqp, topology: topology, queue: queue, prefetch: 256, logger: logger, onConsuming: onConsuming
        ) { delivery in
            let event = try delivery.event()
            if let changed = try event.decode(NotificationChanged.self)?.payload {
                connections.send(LiveFrame.encode(NotificationFrame.Notification(notification: changed.notification)), to: [changed.userId])
            } else if let presence = try event.decode(PresenceChanged.self)?.payload {
                // A live frame is not worth a redelivery loop: without the database it is dropped.
                do {
                    let audience = try await store.audience(of: presence.userId, among: connections.connectedUsers, on: dependencies.postgres)
                    guard !audience.isEmpty else { return }
                    let frame = NotificationFrame.Presence(userId: presence.userId, online: presence.online, lastSeenAt: presence.lastSeenAt)
                    connections.send(LiveFrame.encode(frame), to: audience)
                } catch {
                    logger.warning("presence not pushed: its audience could not be read", metadata: ["error": "\(String(reflecting: error))"])
                }
            } else if let signedOut = try event.decode(UserSignedOut.self)?.payload {
                connections.close(sessionId: signedOut.sessionId, of: signedOut.userId, reason: "signed out")
            }
        }
    }
}
