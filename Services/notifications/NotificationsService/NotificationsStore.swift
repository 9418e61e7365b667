import EventContracts
import Foundation
import Logging
import PostgresNIO
import PostgresSupport
import ServiceHTTP

/// One page of a user's notifications, newest change first.
struct NotificationPage: Encodable, Sendable {
    let notifications: [NotificationRecord]
    /// `null` on the last page.
    @ExplicitNull var nextCursor: String?
}

/// Every SQL statement of notifications, against its own schema.
struct NotificationsStore: Sendable {
    let logger: Logger

    private static let columns = "id, kind, payload::text, count, created_at, read"

    // MARK: Reading and marking (the routes)

    /// The user's notifications (only unread ones with `unreadOnly`), newest change first, after
    /// the cursor's position.
    func page(of userId: String, unreadOnly: Bool, limit: Int, before position: Int64?, on client: PostgresClient) async throws -> NotificationPage {
        let rows = try await client.query(
            """
            SELECT \(unescaped: Self.columns), position FROM notifications
            WHERE user_id = \(userId) AND (NOT \(unreadOnly) OR NOT read) AND position < \(position ?? Int64.max)
            ORDER BY position DESC
            LIMIT \(limit + 1)
            """,
            logger: logger
        )
        var records: [(NotificationRecord, Int64)] = try await rows.readAll { reader in try (Self.record(reading: &reader), reader.next()) }
        var next: String?
        if records.count > limit {
            records.removeLast()
            next = records.last.map { String($0.1) }
        }
        return NotificationPage(notifications: records.map(\.0), nextCursor: next)
    }

    /// Marks one of the user's notifications read; nil when the user has no such notification.
    func markRead(id: String, of userId: String, on client: PostgresClient) async throws -> NotificationRecord? {
        let rows = try await client.query(
            """
            UPDATE notifications SET read = true
            WHERE id = \(id) AND user_id = \(userId)
            RETURNING \(unescaped: Self.columns)
            """,
            logger: logger
        )
        return try await Self.records(rows).first
    }

    /// Marks all of the user's notifications read; how many were unread.
    func markAllRead(of userId: String, on client: PostgresClient) async throws -> Int {
        let rows = try await client.query(
            "UPDATE notifications SET read = true WHERE user_id = \(userId) AND NOT read RETURNING id",
            logger: logger
        )
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    // MARK: Applying events (the consumer), inside its transaction

    /// Who of the batch's recipients (every member but the sender) has no chat connection open. The
    /// consumer also asks before its transaction, for a batch of stored messages alone.
    func offlineRecipients(of batch: [MessageStored], on connection: PostgresConnection) async throws -> Set<String> {
        var recipients = Set<String>()
        for stored in batch {
            for userId in stored.memberIds where userId != stored.message.senderId { recipients.insert(userId) }
        }
        guard !recipients.isEmpty else { return [] }
        var offline = Set<String>()
        for try await userId in try await connection.execute(NotificationStatements.OfflineUsers(ids: Array(recipients)), logger: logger) {
            offline.insert(userId)
        }
        return offline
    }

    /// Stored messages, a batch at a time: one notification per conversation for each member other
    /// than the sender who has no chat connection open, its count raised by the messages they got
    /// (or restarted once it was read). One statement for who is offline (unless the caller read
    /// it: `offline`); when someone is, one for the conversations' names and one for the lot. (Most
    /// recipients of a busy chat are online, and their messages then cost one lookup, not a payload
    /// each.)
    func recordMessages(
        _ batch: [MessageStored], offline known: Set<String>? = nil, on connection: PostgresConnection
    ) async throws -> [(userId: String, NotificationRecord)] {
        // Per (member, conversation): how many messages, and the newest.
        struct Entry {
            var count: Int
            var newest: MessageRecord
        }
        var entries: [String: [String: Entry]] = [:]  // conversation → member → entry
        for stored in batch {
            let message = stored.message
            for userId in stored.memberIds where userId != message.senderId {
                if var entry = entries[message.conversationId]?[userId] {
                    entry.count += 1
                    if message.seq > entry.newest.seq { entry.newest = message }
                    entries[message.conversationId]?[userId] = entry
                } else {
                    entries[message.conversationId, default: [:]][userId] = Entry(count: 1, newest: message)
                }
            }
        }
        guard !entries.isEmpty else { return [] }
        let offline: Set<String>
        if let known {
            offline = known
        } else {
            offline = try await offlineRecipients(of: batch, on: connection)
        }
        entries = entries.compactMapValues { members in
            let away = members.filter { offline.contains($0.key) }
            return away.isEmpty ? nil : away
        }
        guard !entries.isEmpty else { return [] }
        var names: [String: (type: String, name: String?)] = [:]
        let rows = try await connection.execute(NotificationStatements.ConversationNames(ids: Array(entries.keys)), logger: logger)
        for try await (id, type, name) in rows { names[id] = (type, name) }

        // A payload is written once per conversation's newest message and sent once: every member's
        // row names it by its place in `payloads` (a group of 1,024 would otherwise send it 1,023 times).
        var ids: [String] = [], users: [String] = [], conversations: [String] = [], payloads: [String] = []
        var payloadIndices: [Int] = [], counts: [Int] = [], seqs: [Int64] = [], times: [Date] = []
        var payloadIndex: [String: Int] = [:]  // message id → its payload's place in `payloads`, from 1
        for (conversationId, members) in entries {
            for (userId, entry) in members {
                let index: Int
                if let known = payloadIndex[entry.newest.id] {
                    index = known
                } else {
                    let payload = NotificationPayload(
                        conversationId: conversationId, conversationType: names[conversationId]?.type,
                        conversationName: names[conversationId]?.name, lastMessage: MessagePreview(entry.newest)
                    )
                    payloads.append(Self.encode(payload))
                    index = payloads.count
                    payloadIndex[entry.newest.id] = index
                }
                ids.append(EventID.make())
                users.append(userId)
                conversations.append(conversationId)
                payloadIndices.append(index)
                counts.append(entry.count)
                seqs.append(entry.newest.seq)
                times.append(entry.newest.sentAt)
            }
        }
        let upserted = try await connection.execute(
            NotificationStatements.RecordMessages(
                ids: ids, userIds: users, conversationIds: conversations, payloads: payloads, payloadIndices: payloadIndices, counts: counts,
                lastSeqs: seqs, times: times
            ),
            logger: logger
        )
        return try await Self.recordsWithUser(upserted)
    }

    /// A member read up to `readSeq`: their message notification for the conversation is read too.
    /// Returns the notification it marked read (to push to the user's other devices), if any.
    func markConversationRead(
        _ conversationId: String, by userId: String, upTo readSeq: Int64, on connection: PostgresConnection
    ) async throws -> [(userId: String, NotificationRecord)] {
        let rows = try await connection.query(
            """
            UPDATE notifications n SET read = true
            WHERE user_id = \(userId) AND group_key = 'message:' || \(conversationId) AND NOT read AND last_seq <= \(readSeq)
            RETURNING n.user_id, n.id, n.kind, n.payload::text, n.count, n.created_at, n.read
            """,
            logger: logger
        )
        return try await Self.recordsWithUser(rows)
    }

    /// Stores (or replaces) the one notification of `groupKey` for `userId`, unless `userId` or
    /// `actorId` is a deleted account.
    func record(
        kind: String, groupKey: String, for userId: String, conversationId: String?, actorId: String?, payload: NotificationPayload,
        at time: Date, on connection: PostgresConnection
    ) async throws -> NotificationRecord? {
        let rows = try await connection.query(
            """
            INSERT INTO notifications AS n (id, user_id, kind, group_key, conversation_id, actor_id, payload, created_at)
            SELECT \(EventID.make()), \(userId), \(kind), \(groupKey), \(conversationId), \(actorId), \(Self.encode(payload))::jsonb, \(time)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id IN (\(userId), \(actorId)))
            ON CONFLICT (user_id, group_key) DO UPDATE SET
                kind = EXCLUDED.kind, actor_id = EXCLUDED.actor_id, payload = EXCLUDED.payload, count = 1, read = false,
                created_at = EXCLUDED.created_at, position = nextval('notification_positions')
            RETURNING \(unescaped: Self.columns)
            """,
            logger: logger
        )
        return try await Self.records(rows).first
    }

    func deleteNotifications(of userId: String, groupKey: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM notifications WHERE user_id = \(userId) AND group_key = \(groupKey)",
            logger: logger
        )
    }

    /// What notifications knows of a conversation: its type and name, and its members as the
    /// snapshot lists them, but for deleted accounts.
    func applySnapshot(_ snapshot: ConversationSnapshot, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO conversations (id, type, name) VALUES (\(snapshot.id), \(snapshot.type), \(snapshot.name))
            ON CONFLICT (id) DO UPDATE SET type = EXCLUDED.type, name = EXCLUDED.name
            """,
            logger: logger
        )
        let members = snapshot.members.map(\.userId)
        try await connection.query(
            "DELETE FROM conversation_members WHERE conversation_id = \(snapshot.id) AND NOT (user_id = ANY(\(members)))",
            logger: logger
        )
        try await connection.query(
            """
            INSERT INTO conversation_members (conversation_id, user_id)
            SELECT \(snapshot.id), m.id FROM unnest(\(members)::text[]) AS m(id)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id = m.id)
            ON CONFLICT DO NOTHING
            """,
            logger: logger
        )
    }

    func addContact(owner: String, contact: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO contacts (owner_id, contact_id) SELECT \(owner), \(contact)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id IN (\(owner), \(contact)))
            ON CONFLICT DO NOTHING
            """,
            logger: logger
        )
    }

    func removeContact(owner: String, contact: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM contacts WHERE owner_id = \(owner) AND contact_id = \(contact)",
            logger: logger
        )
    }

    /// Applies a presence change unless a newer one was applied already (events may arrive late),
    /// or the account was deleted (its sockets' last "offline" comes after the deletion).
    func setPresence(_ change: PresenceChanged, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO presence AS p (user_id, online, changed_at)
            SELECT \(change.userId), \(change.online), \(change.lastSeenAt)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id = \(change.userId))
            ON CONFLICT (user_id) DO UPDATE SET online = EXCLUDED.online, changed_at = EXCLUDED.changed_at
            WHERE p.changed_at <= EXCLUDED.changed_at
            """,
            logger: logger
        )
    }

    /// Records a sign-in; true when the user had signed in before (so this one is news). A deleted
    /// account's is not recorded and answers true; `record` then stores nothing for it either.
    func recordSignIn(of userId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO signed_in_before (user_id) SELECT \(userId)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id = \(userId))
            ON CONFLICT DO NOTHING RETURNING user_id
            """,
            logger: logger
        )
        for try await _ in rows { return false }
        return true
    }

    /// A deleted user: their notifications, the ones they caused, and what was kept about them; a
    /// tombstone keeps events that come later from storing any of it again.
    func forget(userId: String, on connection: PostgresConnection) async throws {
        for statement: PostgresQuery in [
            "INSERT INTO deleted_users (id) VALUES (\(userId)) ON CONFLICT DO NOTHING",
            "DELETE FROM notifications WHERE user_id = \(userId) OR actor_id = \(userId)",
            "DELETE FROM conversation_members WHERE user_id = \(userId)",
            "DELETE FROM contacts WHERE owner_id = \(userId) OR contact_id = \(userId)",
            "DELETE FROM presence WHERE user_id = \(userId)",
            "DELETE FROM signed_in_before WHERE user_id = \(userId)",
        ] {
            try await connection.query(statement, logger: logger)
        }
    }

    /// Of `candidates`, those who share a conversation or a contact (either way) with `userId`.
    func audience(of userId: String, among candidates: [String], on client: PostgresClient) async throws -> [String] {
        guard !candidates.isEmpty else { return [] }
        let rows = try await client.query(
            """
            SELECT DISTINCT c.user_id FROM unnest(\(candidates)) AS c(user_id)
            WHERE c.user_id <> \(userId) AND (
                EXISTS (SELECT 1 FROM conversation_members mine
                        JOIN conversation_members theirs ON theirs.conversation_id = mine.conversation_id
                        WHERE mine.user_id = \(userId) AND theirs.user_id = c.user_id)
                OR EXISTS (SELECT 1 FROM contacts k
                           WHERE (k.owner_id = \(userId) AND k.contact_id = c.user_id) OR (k.owner_id = c.user_id AND k.contact_id = \(userId)))
            )
            """,
            logger: logger
        )
        var users: [String] = []
        for try await userId in rows.decode(String.self) { users.append(userId) }
        return users
    }

    // MARK: Rows

    private static func encode(_ payload: NotificationPayload) -> String {
        String(decoding: payload.jsonBytes, as: UTF8.self)
    }

    private static func record(id: String, kind: String, payload: String, count: Int, createdAt: Date, read: Bool) throws -> NotificationRecord {
        var decoded = try EventCoding.decoder.decode(NotificationPayload.self, from: Data(payload.utf8))
        if kind == "message" { decoded.count = count }
        return NotificationRecord(id: id, kind: kind, payload: decoded, createdAt: createdAt, read: read)
    }

    /// Reads `columns`.
    private static func record(reading reader: inout PostgresRowReader) throws -> NotificationRecord {
        try record(id: reader.next(), kind: reader.next(), payload: reader.next(), count: reader.next(), createdAt: reader.next(), read: reader.next())
    }

    private static func records(_ rows: PostgresRowSequence) async throws -> [NotificationRecord] {
        try await rows.readAll(record(reading:))
    }

    private static func recordsWithUser(_ rows: PostgresRowSequence) async throws -> [(userId: String, NotificationRecord)] {
        try await recordsWithUser(rows.map(NotificationStatements.rowWithUser))
    }

    private static func recordsWithUser(
        _ rows: some AsyncSequence<NotificationStatements.RowWithUser, any Error>
    ) async throws -> [(userId: String, NotificationRecord)] {
        var records: [(String, NotificationRecord)] = []
        for try await (userId, id, kind, payload, count, createdAt, read) in rows {
            records.append((userId, try record(id: id, kind: kind, payload: payload, count: count, createdAt: createdAt, read: read)))
        }
        return records
    }
}
