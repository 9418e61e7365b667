import EventContracts
import Foundation
import PostgresNIO

/// Which events store which notifications, and what notifications keeps from the others.
struct NotificationRules: Sendable {
    let store: NotificationsStore

    /// Applies one event inside the consumer's transaction; returns the notifications it stored or
    /// changed, to push live after the commit.
    func apply(_ event: ReceivedEvent, at time: Date, on connection: PostgresConnection) async throws -> [(userId: String, NotificationRecord)] {
        if let stored = try event.decode(MessageStored.self)?.payload {
            return try await store.recordMessage(stored, on: connection)
        } else if let receipt = try event.decode(ReceiptUpdated.self)?.payload {
            try await store.markConversationRead(receipt.conversationId, by: receipt.userId, upTo: receipt.readSeq, on: connection)
        } else if let created = try event.decode(ConversationCreated.self)?.payload {
            try await store.applySnapshot(created.conversation, on: connection)
            // A direct conversation announces itself with its first message; a group tells its members.
            guard created.conversation.type == "group" else { return [] }
            let added = created.conversation.members.map(\.userId).filter { $0 != created.actorId }
            return try await groupNotifications("group_added", created.conversation, for: added, actorId: created.actorId, at: time, on: connection)
        } else if let added = try event.decode(ConversationMemberAdded.self)?.payload {
            try await store.applySnapshot(added.conversation, on: connection)
            guard added.userId != added.actorId else { return [] }
            return try await groupNotifications("group_added", added.conversation, for: [added.userId], actorId: added.actorId, at: time, on: connection)
        } else if let removed = try event.decode(ConversationMemberRemoved.self)?.payload {
            try await store.applySnapshot(removed.conversation, on: connection)
            // What they can no longer open goes; someone who left needs no notice of it.
            try await store.deleteNotifications(of: removed.userId, groupKey: "message:\(removed.conversation.id)", on: connection)
            guard removed.userId != removed.actorId else {
                try await store.deleteNotifications(of: removed.userId, groupKey: "group:\(removed.conversation.id)", on: connection)
                return []
            }
            return try await groupNotifications("group_removed", removed.conversation, for: [removed.userId], actorId: removed.actorId, at: time, on: connection)
        } else if let renamed = try event.decode(ConversationRenamed.self)?.payload {
            try await store.applySnapshot(renamed.conversation, on: connection)
        } else if let presence = try event.decode(PresenceChanged.self)?.payload {
            try await store.setPresence(presence, on: connection)
        } else if let contact = try event.decode(ContactAdded.self)?.payload {
            try await store.addContact(owner: contact.ownerId, contact: contact.contactId, on: connection)
            let record = try await store.record(
                kind: "contact_added", groupKey: "contact:\(contact.ownerId)", for: contact.contactId, conversationId: nil,
                actorId: contact.ownerId, payload: NotificationPayload(actorId: contact.ownerId), at: time, on: connection
            )
            return record.map { [(contact.contactId, $0)] } ?? []
        } else if let contact = try event.decode(ContactRemoved.self)?.payload {
            try await store.removeContact(owner: contact.ownerId, contact: contact.contactId, on: connection)
            try await store.deleteNotifications(of: contact.contactId, groupKey: "contact:\(contact.ownerId)", on: connection)
        } else if let signedIn = try event.decode(UserLoggedIn.self)?.payload {
            // A new session on an account that had one before: tell the user (all their devices).
            guard try await store.recordSignIn(of: signedIn.userId, on: connection) else { return [] }
            let record = try await store.record(
                kind: "signed_in", groupKey: "signin:\(signedIn.sessionId)", for: signedIn.userId, conversationId: nil, actorId: nil,
                payload: NotificationPayload(sessionId: signedIn.sessionId), at: time, on: connection
            )
            return record.map { [(signedIn.userId, $0)] } ?? []
        } else if let deleted = try event.decode(UserDeleted.self)?.payload {
            try await store.forget(userId: deleted.userId, on: connection)
        }
        return []
    }

    private func groupNotifications(
        _ kind: String, _ conversation: ConversationSnapshot, for userIds: [String], actorId: String, at time: Date,
        on connection: PostgresConnection
    ) async throws -> [(userId: String, NotificationRecord)] {
        var changed: [(String, NotificationRecord)] = []
        let payload = NotificationPayload(conversationId: conversation.id, conversationType: conversation.type, conversationName: conversation.name, actorId: actorId)
        for userId in userIds {
            if let record = try await store.record(
                kind: kind, groupKey: "group:\(conversation.id)", for: userId, conversationId: conversation.id, actorId: actorId,
                payload: payload, at: time, on: connection
            ) {
                changed.append((userId, record))
            }
        }
        return changed
    }
}
