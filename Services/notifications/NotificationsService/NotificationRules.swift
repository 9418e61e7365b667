import EventContracts
import Foundation
import PostgresNIO

/// Which events store which notifications, and what notifications keeps from the others.
struct NotificationRules: Sendable {
    let store: NotificationsStore

    /// Applies one event other than a stored message (those go in batches, `recordMessages`),
    /// inside the consumer's transaction; returns the notifications it stored or changed, to push
    /// live after the commit.
    func apply(
        _ event: NotificationEventsHandler.Event, at time: Date, on connection: PostgresConnection
    ) async throws -> [(userId: String, NotificationRecord)] {
        switch event {
        case .stored(let stored):
            return try await store.recordMessages([stored], on: connection)
        case .receipt(let receipt):
            // Read in the chat: the message notification is read too, on every device.
            return try await store.markConversationRead(receipt.conversationId, by: receipt.userId, upTo: receipt.readSeq, on: connection)
        case .created(let created):
            try await store.applySnapshot(created.conversation, on: connection)
            // A direct conversation announces itself with its first message; a group tells its members.
            guard created.conversation.type == "group" else { return [] }
            let added = created.conversation.members.map(\.userId).filter { $0 != created.actorId }
            return try await groupNotifications("group_added", created.conversation, for: added, actorId: created.actorId, at: time, on: connection)
        case .memberAdded(let added):
            try await store.applySnapshot(added.conversation, on: connection)
            guard added.userId != added.actorId else { return [] }
            return try await groupNotifications("group_added", added.conversation, for: [added.userId], actorId: added.actorId, at: time, on: connection)
        case .memberRemoved(let removed):
            try await store.applySnapshot(removed.conversation, on: connection)
            // What they can no longer open goes; someone who left needs no notice of it.
            try await store.deleteNotifications(of: removed.userId, groupKey: "message:\(removed.conversation.id)", on: connection)
            guard removed.userId != removed.actorId else {
                try await store.deleteNotifications(of: removed.userId, groupKey: "group:\(removed.conversation.id)", on: connection)
                return []
            }
            return try await groupNotifications(
                "group_removed", removed.conversation, for: [removed.userId], actorId: removed.actorId, at: time, on: connection)
        case .renamed(let renamed):
            try await store.applySnapshot(renamed.conversation, on: connection)
        case .roleChanged(let changed):
            try await store.applySnapshot(changed.conversation, on: connection)
        case .presence(let presence):
            try await store.setPresence(presence, on: connection)
        case .contactAdded(let contact):
            try await store.addContact(owner: contact.ownerId, contact: contact.contactId, on: connection)
            let record = try await store.record(
                kind: "contact_added", groupKey: "contact:\(contact.ownerId)", for: contact.contactId, conversationId: nil,
                actorId: contact.ownerId, payload: NotificationPayload(actorId: contact.ownerId), at: time, on: connection
            )
            return record.map { [(contact.contactId, $0)] } ?? []
        case .contactRemoved(let contact):
            try await store.removeContact(owner: contact.ownerId, contact: contact.contactId, on: connection)
            try await store.deleteNotifications(of: contact.contactId, groupKey: "contact:\(contact.ownerId)", on: connection)
        case .loggedIn(let signedIn):
            // A new session on an account that had one before: tell the user (all their devices).
            guard try await store.recordSignIn(of: signedIn.userId, on: connection) else { return [] }
            let record = try await store.record(
                kind: "signed_in", groupKey: "signin:\(signedIn.sessionId)", for: signedIn.userId, conversationId: nil, actorId: nil,
                payload: NotificationPayload(sessionId: signedIn.sessionId), at: time, on: connection
            )
            return record.map { [(signedIn.userId, $0)] } ?? []
        case .deleted(let deleted):
            try await store.forget(userId: deleted.userId, on: connection)
        }
        return []
    }

    private func groupNotifications(
        _ kind: String, _ conversation: ConversationSnapshot, for userIds: [String], actorId: String, at time: Date,
        on connection: PostgresConnection
    ) async throws -> [(userId: String, NotificationRecord)] {
        var changed: [(String, NotificationRecord)] = []
        let payload = NotificationPayload(
            conversationId: conversation.id, conversationType: conversation.type, conversationName: conversation.name, actorId: actorId)
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
