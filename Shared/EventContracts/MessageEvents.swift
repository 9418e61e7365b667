import Foundation

// Payloads published on the `MessageEvents` exchange (the public contract).

/// A stored chat message, as the public API shows it.
public struct MessageRecord: Codable, Sendable, Equatable {
    public var id: String
    public var conversationId: String
    public var seq: Int64
    public var senderId: String
    public var clientMsgId: String
    public var body: String
    public var sentAt: Date

    public init(id: String, conversationId: String, seq: Int64, senderId: String, clientMsgId: String, body: String, sentAt: Date) {
        self.id = id
        self.conversationId = conversationId
        self.seq = seq
        self.senderId = senderId
        self.clientMsgId = clientMsgId
        self.body = body
        self.sentAt = sentAt
    }
}

public struct ConversationMember: Codable, Sendable, Equatable {
    public var userId: String
    public var role: String
    /// `true` for a deleted account (clients show "Deleted account"); absent otherwise.
    public var deleted: Bool?

    public init(userId: String, role: String, deleted: Bool = false) {
        self.userId = userId
        self.role = role
        self.deleted = deleted ? true : nil
    }
}

/// What other services need to know about a conversation when it changes.
public struct ConversationSnapshot: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var name: String?
    public var members: [ConversationMember]
    /// The conversation's last seq when the change took effect: a member removed here receives
    /// nothing after it.
    public var lastSeq: Int64?

    public init(id: String, type: String, name: String?, members: [ConversationMember], lastSeq: Int64? = nil) {
        self.id = id
        self.type = type
        self.name = name
        self.members = members
        self.lastSeq = lastSeq
    }
}

/// socket-handler → messages: please store this message.
public struct MessageSent: EventPayload, Equatable {
    public static let eventType = "message.sent"
    public static let exchange = EventExchange.messageEvents
    public var senderId: String
    public var clientMsgId: String
    public var conversationId: String
    public var body: String
    /// The socket-handler instance holding the sender's connection, for the ack.
    public var instanceId: String

    public init(senderId: String, clientMsgId: String, conversationId: String, body: String, instanceId: String) {
        self.senderId = senderId
        self.clientMsgId = clientMsgId
        self.conversationId = conversationId
        self.body = body
        self.instanceId = instanceId
    }
}

/// messages → everyone: a new message was stored. Published one stored batch per broker message
/// (`EventBatchEnvelope`), in seq order within each conversation.
public struct MessageStored: EventPayload, Equatable {
    public static let eventType = "message.stored"
    public static let exchange = EventExchange.messageEvents
    public var message: MessageRecord
    /// The members when it was stored: who gets it.
    public var memberIds: [String]
    /// The socket-handler instance holding the sending connection, which gets the `ack`; absent for
    /// a send over HTTP. The ack is routed there directly, without the presence registry.
    public var senderInstance: String?

    public init(message: MessageRecord, memberIds: [String], senderInstance: String? = nil) {
        self.message = message
        self.memberIds = memberIds
        self.senderInstance = senderInstance
    }
}

public struct ReceiptUpdated: EventPayload, Equatable {
    public static let eventType = "receipt.updated"
    public static let exchange = EventExchange.messageEvents
    public var conversationId: String
    public var userId: String
    public var deliveredSeq: Int64
    public var readSeq: Int64
    public var memberIds: [String]

    public init(conversationId: String, userId: String, deliveredSeq: Int64, readSeq: Int64, memberIds: [String]) {
        self.conversationId = conversationId
        self.userId = userId
        self.deliveredSeq = deliveredSeq
        self.readSeq = readSeq
        self.memberIds = memberIds
    }
}

public struct ConversationCreated: EventPayload, Equatable {
    public static let eventType = "conversation.created"
    public static let exchange = EventExchange.messageEvents
    public var conversation: ConversationSnapshot
    public var actorId: String

    public init(conversation: ConversationSnapshot, actorId: String) {
        self.conversation = conversation
        self.actorId = actorId
    }
}

public struct ConversationMemberAdded: EventPayload, Equatable {
    public static let eventType = "conversation.member_added"
    public static let exchange = EventExchange.messageEvents
    public var conversation: ConversationSnapshot
    public var userId: String
    public var actorId: String

    public init(conversation: ConversationSnapshot, userId: String, actorId: String) {
        self.conversation = conversation
        self.userId = userId
        self.actorId = actorId
    }
}

public struct ConversationMemberRemoved: EventPayload, Equatable {
    public static let eventType = "conversation.member_removed"
    public static let exchange = EventExchange.messageEvents
    public var conversation: ConversationSnapshot
    public var userId: String
    public var actorId: String

    public init(conversation: ConversationSnapshot, userId: String, actorId: String) {
        self.conversation = conversation
        self.userId = userId
        self.actorId = actorId
    }
}

public struct ConversationRoleChanged: EventPayload, Equatable {
    public static let eventType = "conversation.role_changed"
    public static let exchange = EventExchange.messageEvents
    public var conversation: ConversationSnapshot
    public var userId: String
    public var role: String
    /// Who changed it; absent when the group promoted its longest-standing member because its last
    /// admin left.
    public var actorId: String?

    public init(conversation: ConversationSnapshot, userId: String, role: String, actorId: String?) {
        self.conversation = conversation
        self.userId = userId
        self.role = role
        self.actorId = actorId
    }
}

public struct ConversationRenamed: EventPayload, Equatable {
    public static let eventType = "conversation.renamed"
    public static let exchange = EventExchange.messageEvents
    public var conversation: ConversationSnapshot
    public var actorId: String

    public init(conversation: ConversationSnapshot, actorId: String) {
        self.conversation = conversation
        self.actorId = actorId
    }
}

/// Live frames for the users one socket-handler instance holds, on the `InstanceDelivery` direct
/// exchange with the instance id as routing key (the public contract: delivery goes only where the
/// recipients are connected). Transient: a lost one is recovered by catch-up.
public struct LiveDelivery: EventPayload, Equatable {
    public static let eventType = "live.deliver"
    public static let exchange = EventExchange.instanceDelivery

    /// The users on the target instance who get `frame`.
    public var recipients: [String]
    /// The JSON text frame, encoded once by the router.
    public var frame: String
    /// For `message` frames: the sender's connection that sent it gets this `ack` frame instead.
    public var ack: LiveAck?

    public init(recipients: [String], frame: String, ack: LiveAck?) {
        self.recipients = recipients
        self.frame = frame
        self.ack = ack
    }
}

public struct LiveAck: Codable, Sendable, Equatable {
    public var senderId: String
    public var clientMsgId: String
    public var frame: String

    public init(senderId: String, clientMsgId: String, frame: String) {
        self.senderId = senderId
        self.clientMsgId = clientMsgId
        self.frame = frame
    }
}

/// socket-handler → messages: a member's delivered/read markers moved (up-to markers; messages
/// keeps them moving forward only and announces `receipt.updated`).
public struct ReceiptMarked: EventPayload, Equatable {
    public static let eventType = "receipt.marked"
    public static let exchange = EventExchange.messageEvents
    public var conversationId: String
    public var userId: String
    public var deliveredSeq: Int64?
    public var readSeq: Int64?

    public init(conversationId: String, userId: String, deliveredSeq: Int64?, readSeq: Int64?) {
        self.conversationId = conversationId
        self.userId = userId
        self.deliveredSeq = deliveredSeq
        self.readSeq = readSeq
    }
}

/// messages → the sender's socket-handler instance (direct exchange, routing key = instance id):
/// the answer to a send that stored nothing new. A retried send gets the message stored the first
/// time (only its sender hears of it again: the members had it); a refused one gets an error code.
/// Best effort: a sender that misses it retries and is answered again.
public struct SendAnswered: EventPayload, Equatable {
    public static let eventType = "send.answered"
    public static let exchange = EventExchange.instanceDelivery
    public var senderId: String
    public var clientMsgId: String
    public var conversationId: String
    /// A retry: the message as stored the first time.
    public var message: MessageRecord?
    /// A refusal: `not_found` (not a member), `peer_deleted`, `send_failed` (the send itself fails).
    public var error: String?

    public init(senderId: String, clientMsgId: String, conversationId: String, message: MessageRecord? = nil, error: String? = nil) {
        self.senderId = senderId
        self.clientMsgId = clientMsgId
        self.conversationId = conversationId
        self.message = message
        self.error = error
    }
}
