import Foundation

// Payloads published on the `UserEvents` exchange (the public contract).

public struct UserRegistered: EventPayload, Equatable {
    public static let eventType = "user.registered"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var username: String
    public var email: String
    public var displayName: String
    public var createdAt: Date

    public init(userId: String, username: String, email: String, displayName: String, createdAt: Date) {
        self.userId = userId
        self.username = username
        self.email = email
        self.displayName = displayName
        self.createdAt = createdAt
    }
}

public struct UserLoggedIn: EventPayload, Equatable {
    public static let eventType = "user.logged_in"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var sessionId: String

    public init(userId: String, sessionId: String) {
        self.userId = userId
        self.sessionId = sessionId
    }
}

public struct UserSignedOut: EventPayload, Equatable {
    public static let eventType = "user.signed_out"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var sessionId: String

    public init(userId: String, sessionId: String) {
        self.userId = userId
        self.sessionId = sessionId
    }
}

public struct UserUpdated: EventPayload, Equatable {
    public static let eventType = "user.updated"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var username: String
    public var displayName: String
    public var about: String

    public init(userId: String, username: String, displayName: String, about: String) {
        self.userId = userId
        self.username = username
        self.displayName = displayName
        self.about = about
    }
}

public struct UserDeleted: EventPayload, Equatable {
    public static let eventType = "user.deleted"
    public static let exchange = EventExchange.userEvents
    public var userId: String

    public init(userId: String) {
        self.userId = userId
    }
}

public struct PresenceChanged: EventPayload, Equatable {
    public static let eventType = "presence.changed"
    public static let exchange = EventExchange.userEvents
    public var userId: String
    public var online: Bool
    public var lastSeenAt: Date

    public init(userId: String, online: Bool, lastSeenAt: Date) {
        self.userId = userId
        self.online = online
        self.lastSeenAt = lastSeenAt
    }
}

/// users: `ownerId` added `contactId` to their contacts (beyond the public contract: notifications tells
/// the added user, and shows presence between contacts).
public struct ContactAdded: EventPayload, Equatable {
    public static let eventType = "contact.added"
    public static let exchange = EventExchange.userEvents
    public var ownerId: String
    public var contactId: String

    public init(ownerId: String, contactId: String) {
        self.ownerId = ownerId
        self.contactId = contactId
    }
}

public struct ContactRemoved: EventPayload, Equatable {
    public static let eventType = "contact.removed"
    public static let exchange = EventExchange.userEvents
    public var ownerId: String
    public var contactId: String

    public init(ownerId: String, contactId: String) {
        self.ownerId = ownerId
        self.contactId = contactId
    }
}
