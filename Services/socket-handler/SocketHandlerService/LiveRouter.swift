import EventBus
import EventContracts
import Logging

/// Sends frames to the instances where their recipients are connected, and nowhere else.
struct LiveRouter: Sendable {
    let presence: PresenceRegistry
    let publisher: EventPublisher
    let logger: Logger

    /// A stored message: `message` to every member's connections, `ack` to the connection that sent it.
    func route(_ stored: MessageStored) async throws {
        let message = stored.message
        let frame = OutboundFrame.encode(OutboundFrame.Message(message: message))
        let ack = LiveAck(
            senderId: message.senderId, clientMsgId: message.clientMsgId,
            frame: OutboundFrame.encode(OutboundFrame.Ack(clientMsgId: message.clientMsgId, message: message))
        )
        try await route(frame: frame, to: stored.memberIds, ack: ack)
    }

    func route(frame: String, to userIds: [String], ack: LiveAck?) async throws {
        let byInstance: [String: [String]]
        do {
            byInstance = try await presence.instances(of: userIds)
        } catch {
            // Without the registry there is no live route: clients catch up by seq, and a sender
            // without an ack retries (sends are idempotent), which announces the message again.
            logger.warning("presence registry unavailable, skipping live delivery", metadata: ["error": "\(error)"])
            return
        }
        var messages: [OutgoingMessage] = []
        for (instance, recipients) in byInstance {
            let payload = LiveDelivery(recipients: recipients, frame: frame, ack: recipients.contains(ack?.senderId ?? "") ? ack : nil)
            var message = try OutgoingMessage(EventEnvelope(producer: "socket-handler", payload: payload))
            message.routingKey = instance
            messages.append(message)
        }
        guard !messages.isEmpty else { return }
        let outcomes = try await publisher.publish(messages)
        if outcomes.contains(.unroutable) {
            // An instance that vanished since its last heartbeat: its clients will reconnect.
            logger.debug("live delivery to a departed instance dropped")
        }
    }
}

enum SocketConsumers {
    /// Shared by all instances (competing consumers): each stored message is routed once.
    static func messageEvents(configuration: AMQPConfiguration, namespace: String, router: LiveRouter, logger: Logger) -> EventConsumer {
        let queue = "\(namespace).message-events"
        let topology = Topology.consumer(queue: queue, bindings: [QueueBinding(.messageEvents, MessageStored.eventType)])
        return EventConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 256, logger: logger) { delivery in
            if let stored = try delivery.event().decode(MessageStored.self)?.payload {
                try await router.route(stored)
            }
        }
    }

    /// This instance's own queue: live frames for its connections, and signouts (every instance
    /// closes the sockets of a signed-out session it holds).
    static func instance(
        configuration: AMQPConfiguration, namespace: String, instanceId: String, connections: ConnectionRegistry, logger: Logger
    ) -> EventConsumer {
        let queue = "\(namespace).instance.\(instanceId)"
        let topology = Topology.instance(queue: queue, routingKey: instanceId, extraBindings: [QueueBinding(.userEvents, UserSignedOut.eventType)])
        return EventConsumer(configuration: configuration, topology: topology, queue: queue, prefetch: 512, logger: logger) { delivery in
            let event = try delivery.event()
            if let live = try event.decode(LiveDelivery.self)?.payload {
                connections.deliver(LiveDeliveryFrames(
                    recipients: live.recipients, frame: live.frame,
                    ack: live.ack.map { ($0.senderId, $0.clientMsgId, $0.frame) }
                ))
            } else if let signedOut = try event.decode(UserSignedOut.self)?.payload {
                connections.close(sessionId: signedOut.sessionId, of: signedOut.userId, reason: "signed out")
            }
        }
    }
}
