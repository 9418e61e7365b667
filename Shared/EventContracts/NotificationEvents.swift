import Foundation

/// A stored notification, as `/api/notifications` and the `/ws/notifications` stream show it.
public struct NotificationRecord: Codable, Sendable, Equatable {
    public var id: String
    /// `message`, `group_added`, `group_removed`, `contact_added` or `signed_in`.
    public var kind: String
    public var payload: NotificationPayload
    public var createdAt: Date
    public var read: Bool

    public init(id: String, kind: String, payload: NotificationPayload, createdAt: Date, read: Bool) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.createdAt = createdAt
        self.read = read
    }
}

/// What a notification is about; the fields its kind needs, the others absent.
public struct NotificationPayload: Codable, Sendable, Equatable {
    public var conversationId: String?
    public var conversationType: String?
    public var conversationName: String?
    /// `message`: unread messages in the conversation since the notification was last read.
    public var count: Int?
    public var lastMessage: MessagePreview?
    /// Who added you (to a group, as a contact) or removed you.
    public var actorId: String?
    /// `signed_in`: the new session.
    public var sessionId: String?

    public init(
        conversationId: String? = nil, conversationType: String? = nil, conversationName: String? = nil, count: Int? = nil,
        lastMessage: MessagePreview? = nil, actorId: String? = nil, sessionId: String? = nil
    ) {
        self.conversationId = conversationId
        self.conversationType = conversationType
        self.conversationName = conversationName
        self.count = count
        self.lastMessage = lastMessage
        self.actorId = actorId
        self.sessionId = sessionId
    }
}

/// The latest message of a `message` notification, its body cut to a preview.
public struct MessagePreview: Codable, Sendable, Equatable {
    public static let maxBodyCharacters = 140

    public var id: String
    public var seq: Int64
    public var senderId: String
    public var body: String
    public var sentAt: Date

    public init(_ message: MessageRecord) {
        id = message.id
        seq = message.seq
        senderId = message.senderId
        body = String(message.body.prefix(Self.maxBodyCharacters))
        sentAt = message.sentAt
    }
}

/// notifications → its own instances (beyond the public contract): a user's notification was stored or
/// updated; every instance pushes it to that user's `/ws/notifications` sockets it holds.
/// Published after the commit, best effort: a client that misses it fetches `GET /api/notifications`.
public struct NotificationChanged: EventPayload, Equatable {
    public static let eventType = "notification.changed"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var notification: NotificationRecord

    public init(userId: String, notification: NotificationRecord) {
        self.userId = userId
        self.notification = notification
    }
}
