import EventBus
import EventContracts
import LiveSockets
import Logging

/// Sends frames to the instances where their recipients are connected, and nowhere else.
struct LiveRouter: Sendable {
    let presence: PresenceRegistry
    let membership: MembershipCache
    let publisher: EventPublisher
    let logger: Logger

    /// Routes what the shared consumer receives; every event with a member list refreshes the cache.
    func route(_ event: ReceivedEvent) async throws {
        if let stored = try event.decode(MessageStored.self)?.payload {
            await remember(stored.message.conversationId, stored.memberIds)
            try await route(stored)
        } else if let receipt = try event.decode(ReceiptUpdated.self)?.payload {
            await remember(receipt.conversationId, receipt.memberIds)
            let frame = LiveFrame.encode(OutboundFrame.Receipt(
                conversationId: receipt.conversationId, userId: receipt.userId, deliveredSeq: receipt.deliveredSeq, readSeq: receipt.readSeq
            ))
            try await route(frame: frame, to: receipt.memberIds.filter { $0 != receipt.userId }, ack: nil)
        } else if let created = try event.decode(ConversationCreated.self)?.payload {
            try await announce("created", created.conversation)
        } else if let added = try event.decode(ConversationMemberAdded.self)?.payload {
            try await announce("member_added", added.conversation)
        } else if let removed = try event.decode(ConversationMemberRemoved.self)?.payload {
            // The removed member hears of the removal, and of nothing after it.
            try await announce("member_removed", removed.conversation, alsoTo: [removed.userId])
        } else if let renamed = try event.decode(ConversationRenamed.self)?.payload {
            try await announce("renamed", renamed.conversation)
        }
    }

    private func announce(_ kind: String, _ conversation: ConversationSnapshot, alsoTo extra: [String] = []) async throws {
        let members = conversation.members.map(\.userId)
        await remember(conversation.id, members)
        let frame = LiveFrame.encode(OutboundFrame.Conversation(event: kind, conversation: conversation))
        try await route(frame: frame, to: Array(Set(members + extra)), ack: nil)
    }

    private func remember(_ conversationId: String, _ memberIds: [String]) async {
        do { try await membership.replace(conversationId, with: memberIds) } catch {
            logger.debug("membership cache unavailable", metadata: ["error": "\(error)"])
        }
    }

    /// A stored message: `message` to every member's connections, `ack` to the connection that sent it.
    func route(_ stored: MessageStored) async throws {
        let message = stored.message
        let frame = LiveFrame.encode(OutboundFrame.Message(message: message))
        let ack = LiveAck(
            senderId: message.senderId, clientMsgId: message.clientMsgId,
            frame: LiveFrame.encode(OutboundFrame.Ack(clientMsgId: message.clientMsgId, message: message))
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
    static func messageEvents(
        configuration: AMQPConfiguration, namespace: String, router: LiveRouter, logger: Logger, onConsuming: @escaping @Sendable () -> Void
    ) -> EventConsumer {
        let queue = "\(namespace).message-events"
        let bindings = [
            MessageStored.eventType, ReceiptUpdated.eventType, ConversationCreated.eventType, ConversationMemberAdded.eventType,
            ConversationMemberRemoved.eventType, ConversationRenamed.eventType,
        ].map { QueueBinding(.messageEvents, $0) }
        let topology = Topology.consumer(queue: queue, bindings: bindings)
        return EventConsumer(
            configuration: configuration, topology: topology, queue: queue, prefetch: 256, logger: logger, onConsuming: onConsuming
        ) { delivery in
            try await router.route(try delivery.event())
        }
    }

    /// This instance's own queue: live frames for its connections, and signouts (every instance
    /// closes the sockets of a signed-out session it holds).
    static func instance(
        configuration: AMQPConfiguration, namespace: String, instanceId: String, connections: ConnectionRegistry, logger: Logger,
        onConsuming: @escaping @Sendable () -> Void
    ) -> EventConsumer {
        let queue = "\(namespace).instance.\(instanceId)"
        let topology = Topology.instance(queue: queue, routingKey: instanceId, extraBindings: [QueueBinding(.userEvents, UserSignedOut.eventType)])
        return EventConsumer(
            configuration: configuration, topology: topology, queue: queue, prefetch: 512, logger: logger, onConsuming: onConsuming
        ) { delivery in
            let event = try delivery.event()
            if let live = try event.decode(LiveDelivery.self)?.payload {
                connections.deliver(LiveDeliveryFrames(
                    recipients: live.recipients, frame: live.frame,
                    ack: live.ack.map { ($0.senderId, $0.clientMsgId, $0.frame) }
                ))
            } else if let rejected = try event.decode(MessageRejected.self)?.payload {
                let error = LiveFrame.error("not_found", "No such conversation, or you are not a member.", clientMsgId: rejected.clientMsgId)
                connections.deliver(LiveDeliveryFrames(recipients: [rejected.senderId], frame: "", ack: (rejected.senderId, rejected.clientMsgId, error)))
            } else if let signedOut = try event.decode(UserSignedOut.self)?.payload {
                connections.close(sessionId: signedOut.sessionId, of: signedOut.userId, reason: "signed out")
            }
        }
    }
}
