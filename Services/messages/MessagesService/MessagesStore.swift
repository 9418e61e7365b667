import EventContracts
import Foundation
import Logging
import PostgresNIO
import PostgresSupport
import ServiceHTTP

/// A member as conversation details show it.
public struct MemberState: Codable, Sendable, Equatable {
    public let userId: String
    public let role: String
    public let deliveredSeq: Int64
    public let readSeq: Int64
}

/// `GET /api/conversations/{id}`.
public struct ConversationDetails: Codable, Sendable, Equatable {
    public let id: String
    public let type: String
    @ExplicitNull public var name: String?
    public let members: [MemberState]
    public let lastSeq: Int64

    var snapshot: ConversationSnapshot {
        ConversationSnapshot(id: id, type: type, name: name, members: members.map { ConversationMember(userId: $0.userId, role: $0.role) })
    }
}

/// One entry of `GET /api/conversations`.
public struct ConversationSummary: Codable, Sendable, Equatable {
    public let id: String
    public let type: String
    @ExplicitNull public var name: String?
    public internal(set) var members: [ConversationMember]
    @ExplicitNull public var lastMessage: MessageRecord?
    public let lastSeq: Int64
    public let unreadCount: Int64
    public let myReadSeq: Int64
}

/// What became of one send.
enum SendResult: Sendable, Equatable {
    case stored(MessageRecord, memberIds: [String], isNew: Bool)
    /// Not a member (or no such conversation): the send is refused.
    case notMember
}

/// Every SQL statement of messages, against its own schema.
struct MessagesStore: Sendable {
    let schema: String
    let logger: Logger

    init(schema: SchemaName, logger: Logger) {
        self.schema = schema.rawValue
        self.logger = logger
    }

    // MARK: Known users (from UserEvents)

    func rememberUser(id: String, username: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO \(unescaped: schema).known_users (id, username) VALUES (\(id), \(username)) ON CONFLICT (id) DO NOTHING",
            logger: logger
        )
    }

    /// A deleted user leaves every conversation.
    func forgetUser(id: String, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM \(unescaped: schema).members WHERE user_id = \(id)", logger: logger)
        try await connection.query("DELETE FROM \(unescaped: schema).known_users WHERE id = \(id)", logger: logger)
    }

    func knownUsers(_ ids: [String], on connection: PostgresConnection) async throws -> Set<String> {
        var known = Set<String>()
        let rows = try await connection.query("SELECT id FROM \(unescaped: schema).known_users WHERE id = ANY(\(ids))", logger: logger)
        for try await id in rows.decode(String.self) { known.insert(id) }
        return known
    }

    // MARK: Conversations

    /// The one direct conversation of a pair, created if it does not exist; `created` tells which.
    func directConversation(between me: String, and other: String, on connection: PostgresConnection) async throws -> (ConversationDetails, created: Bool) {
        let key = [me, other].sorted().joined(separator: "|")
        let id = EventID.make()
        // Two simultaneous requests race on the unique direct_key; exactly one insert wins.
        let inserted = try await connection.query(
            """
            INSERT INTO \(unescaped: schema).conversations (id, type, direct_key) VALUES (\(id), 'direct', \(key))
            ON CONFLICT (direct_key) DO NOTHING RETURNING id
            """,
            logger: logger
        )
        var created = false
        for try await _ in inserted { created = true }
        if created {
            try await insertMembers([me, other], role: "member", into: id, on: connection)
        }
        let existing = try await connection.query("SELECT id FROM \(unescaped: schema).conversations WHERE direct_key = \(key)", logger: logger)
        var conversationId = id
        for try await found in existing.decode(String.self) { conversationId = found }
        guard let details = try await details(of: conversationId, on: connection) else {
            throw APIError.internalError
        }
        return (details, created)
    }

    func createGroup(name: String, creator: String, memberIds: [String], on connection: PostgresConnection) async throws -> ConversationDetails {
        let id = EventID.make()
        try await connection.query(
            "INSERT INTO \(unescaped: schema).conversations (id, type, name) VALUES (\(id), 'group', \(name))",
            logger: logger
        )
        try await insertMembers([creator], role: "admin", into: id, on: connection)
        try await insertMembers(Set(memberIds).subtracting([creator]).sorted(), role: "member", into: id, on: connection)
        guard let details = try await details(of: id, on: connection) else { throw APIError.internalError }
        return details
    }

    /// New members of a new conversation, in one statement; they join in the order given.
    private func insertMembers(_ userIds: [String], role: String, into conversationId: String, on connection: PostgresConnection) async throws {
        guard !userIds.isEmpty else { return }
        try await connection.query(
            """
            INSERT INTO \(unescaped: schema).members (conversation_id, user_id, role)
            SELECT \(conversationId), user_id, \(role) FROM unnest(\(userIds)) WITH ORDINALITY AS new(user_id, position) ORDER BY position
            """,
            logger: logger
        )
    }

    func details(of conversationId: String, on connection: PostgresConnection) async throws -> ConversationDetails? {
        let rows = try await connection.query(
            "SELECT id, type, name, last_seq FROM \(unescaped: schema).conversations WHERE id = \(conversationId)",
            logger: logger
        )
        for try await (id, type, name, lastSeq) in rows.decode((String, String, String?, Int64).self) {
            var members: [MemberState] = []
            let memberRows = try await connection.query(
                """
                SELECT user_id, role, delivered_seq, read_seq FROM \(unescaped: schema).members
                WHERE conversation_id = \(id) ORDER BY joined_at, user_id
                """,
                logger: logger
            )
            for try await (userId, role, delivered, read) in memberRows.decode((String, String, Int64, Int64).self) {
                members.append(MemberState(userId: userId, role: role, deliveredSeq: delivered, readSeq: read))
            }
            return ConversationDetails(id: id, type: type, name: name, members: members, lastSeq: lastSeq)
        }
        return nil
    }

    /// The member's role, or nil when `userId` is not a member (or the conversation does not exist).
    func role(of userId: String, in conversationId: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query(
            "SELECT role FROM \(unescaped: schema).members WHERE conversation_id = \(conversationId) AND user_id = \(userId)",
            logger: logger
        )
        for try await role in rows.decode(String.self) { return role }
        return nil
    }

    /// The caller's conversations, most recent activity first.
    func conversations(of userId: String, on connection: PostgresConnection) async throws -> [ConversationSummary] {
        let rows = try await connection.query(
            """
            SELECT c.id, c.type, c.name, c.last_seq, m.read_seq,
                   lm.id, lm.seq, lm.sender_id, lm.client_msg_id, lm.body, lm.sent_at
            FROM \(unescaped: schema).members m
            JOIN \(unescaped: schema).conversations c ON c.id = m.conversation_id
            LEFT JOIN \(unescaped: schema).messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
            WHERE m.user_id = \(userId)
            ORDER BY c.last_activity DESC, c.id
            LIMIT 500
            """,
            logger: logger
        )
        var summaries: [ConversationSummary] = []
        for try await (id, type, name, lastSeq, readSeq, messageId, seq, sender, clientId, body, sentAt)
            in rows.decode((String, String, String?, Int64, Int64, String?, Int64?, String?, String?, String?, Date?).self) {
            var lastMessage: MessageRecord?
            if let messageId, let seq, let sender, let clientId, let body, let sentAt {
                lastMessage = MessageRecord(id: messageId, conversationId: id, seq: seq, senderId: sender, clientMsgId: clientId, body: body, sentAt: sentAt)
            }
            summaries.append(ConversationSummary(
                id: id, type: type, name: name, members: [], lastMessage: lastMessage,
                lastSeq: lastSeq, unreadCount: max(0, lastSeq - readSeq), myReadSeq: readSeq
            ))
        }
        // Members in one query for all conversations.
        var members: [String: [ConversationMember]] = [:]
        let memberRows = try await connection.query(
            """
            SELECT conversation_id, user_id, role FROM \(unescaped: schema).members
            WHERE conversation_id = ANY(\(summaries.map(\.id))) ORDER BY joined_at, user_id
            """,
            logger: logger
        )
        for try await (conversationId, userId, role) in memberRows.decode((String, String, String).self) {
            members[conversationId, default: []].append(ConversationMember(userId: userId, role: role))
        }
        for index in summaries.indices { summaries[index].members = members[summaries[index].id] ?? [] }
        return summaries
    }

    func rename(_ conversationId: String, to name: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE \(unescaped: schema).conversations SET name = \(name) WHERE id = \(conversationId)",
            logger: logger
        )
    }

    /// Adds a member; false when already one.
    func addMember(_ userId: String, to conversationId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO \(unescaped: schema).members (conversation_id, user_id, role, delivered_seq, read_seq)
            SELECT id, \(userId), 'member', last_seq, last_seq FROM \(unescaped: schema).conversations WHERE id = \(conversationId)
            ON CONFLICT DO NOTHING RETURNING user_id
            """,
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    func removeMember(_ userId: String, from conversationId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM \(unescaped: schema).members WHERE conversation_id = \(conversationId) AND user_id = \(userId) RETURNING user_id",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    // MARK: Messages

    /// Stores sends in order (one transaction is the caller's). The same (sender, clientMsgId)
    /// returns the stored message; otherwise the conversation row is locked, its next seq taken,
    /// the message inserted and the sender's markers moved to it (one statement). Two round trips a
    /// message, plus one per conversation for its member list.
    func store(_ sends: [MessageSent], at sentAt: Date, on connection: PostgresConnection) async throws -> [SendResult] {
        var members: [String: [String]] = [:]
        func memberList(_ conversationId: String) async throws -> [String] {
            if let cached = members[conversationId] { return cached }
            let list = try await memberIds(of: conversationId, on: connection)
            members[conversationId] = list
            return list
        }
        var results: [SendResult] = []
        for send in sends {
            let lookup = try await connection.query(
                """
                SELECT m.id, m.conversation_id, m.seq, m.body, m.sent_at,
                       EXISTS (SELECT 1 FROM \(unescaped: schema).members
                               WHERE conversation_id = \(send.conversationId) AND user_id = \(send.senderId))
                FROM (SELECT 1) one
                LEFT JOIN \(unescaped: schema).messages m ON m.sender_id = \(send.senderId) AND m.client_msg_id = \(send.clientMsgId)
                """,
                logger: logger
            )
            var existing: MessageRecord?
            var isMember = false
            for try await (id, conversationId, seq, body, storedAt, member) in lookup.decode((String?, String?, Int64?, String?, Date?, Bool).self) {
                isMember = member
                if let id, let conversationId, let seq, let body, let storedAt {
                    existing = MessageRecord(id: id, conversationId: conversationId, seq: seq, senderId: send.senderId, clientMsgId: send.clientMsgId, body: body, sentAt: storedAt)
                }
            }
            if let existing {
                results.append(.stored(existing, memberIds: try await memberList(existing.conversationId), isNew: false))
                continue
            }
            guard isMember else {
                results.append(.notMember)
                continue
            }
            let id = EventID.make(at: sentAt)
            let inserted = try await connection.query(
                """
                WITH next AS (
                    UPDATE \(unescaped: schema).conversations SET last_seq = last_seq + 1, last_activity = \(sentAt)
                    WHERE id = \(send.conversationId) RETURNING last_seq
                ), stored AS (
                    INSERT INTO \(unescaped: schema).messages (id, conversation_id, seq, sender_id, client_msg_id, body, sent_at)
                    SELECT \(id), \(send.conversationId), last_seq, \(send.senderId), \(send.clientMsgId), \(send.body), \(sentAt) FROM next
                    RETURNING seq
                ), marked AS (
                    UPDATE \(unescaped: schema).members
                    SET delivered_seq = GREATEST(delivered_seq, (SELECT seq FROM stored)), read_seq = GREATEST(read_seq, (SELECT seq FROM stored))
                    WHERE conversation_id = \(send.conversationId) AND user_id = \(send.senderId)
                )
                SELECT seq FROM stored
                """,
                logger: logger
            )
            var seq: Int64 = 0
            for try await value in inserted.decode(Int64.self) { seq = value }
            let record = MessageRecord(id: id, conversationId: send.conversationId, seq: seq, senderId: send.senderId, clientMsgId: send.clientMsgId, body: send.body, sentAt: sentAt)
            results.append(.stored(record, memberIds: try await memberList(send.conversationId), isNew: true))
        }
        return results
    }

    func memberIds(of conversationId: String, on connection: PostgresConnection) async throws -> [String] {
        var ids: [String] = []
        let rows = try await connection.query(
            "SELECT user_id FROM \(unescaped: schema).members WHERE conversation_id = \(conversationId) ORDER BY user_id",
            logger: logger
        )
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids
    }

    /// A page of messages in seq order: after `after`, or before `before` (the newest `limit` of
    /// those), or the newest `limit`.
    func messages(in conversationId: String, after: Int64?, before: Int64?, limit: Int, on connection: PostgresConnection) async throws -> [MessageRecord] {
        let query: PostgresQuery
        if let after {
            query = """
                SELECT id, conversation_id, seq, sender_id, client_msg_id, body, sent_at FROM \(unescaped: schema).messages
                WHERE conversation_id = \(conversationId) AND seq > \(after) AND seq < \(before ?? Int64.max)
                ORDER BY seq LIMIT \(limit)
                """
        } else {
            query = """
                SELECT * FROM (
                    SELECT id, conversation_id, seq, sender_id, client_msg_id, body, sent_at FROM \(unescaped: schema).messages
                    WHERE conversation_id = \(conversationId) AND seq < \(before ?? Int64.max)
                    ORDER BY seq DESC LIMIT \(limit)
                ) newest ORDER BY seq
                """
        }
        var records: [MessageRecord] = []
        for try await (id, conversation, seq, sender, clientId, body, sentAt) in try await connection.query(query, logger: logger).decode((String, String, Int64, String, String, String, Date).self) {
            records.append(MessageRecord(id: id, conversationId: conversation, seq: seq, senderId: sender, clientMsgId: clientId, body: body, sentAt: sentAt))
        }
        return records
    }

    /// Moves a member's markers forward only, never past the last seq (read implies delivered);
    /// nil when not a member. `changed` is false when neither marker moved.
    func advanceMarkers(
        of userId: String, in conversationId: String, delivered: Int64?, read: Int64?, on connection: PostgresConnection
    ) async throws -> (delivered: Int64, read: Int64, changed: Bool)? {
        let rows = try await connection.query(
            """
            SELECT m.delivered_seq, m.read_seq, c.last_seq
            FROM \(unescaped: schema).members m JOIN \(unescaped: schema).conversations c ON c.id = m.conversation_id
            WHERE m.conversation_id = \(conversationId) AND m.user_id = \(userId)
            FOR UPDATE OF m
            """,
            logger: logger
        )
        for try await (oldDelivered, oldRead, lastSeq) in rows.decode((Int64, Int64, Int64).self) {
            let newRead = max(oldRead, min(read ?? 0, lastSeq))
            let newDelivered = max(oldDelivered, min(max(delivered ?? 0, newRead), lastSeq))
            guard newRead != oldRead || newDelivered != oldDelivered else { return (oldDelivered, oldRead, false) }
            try await connection.query(
                """
                UPDATE \(unescaped: schema).members SET delivered_seq = \(newDelivered), read_seq = \(newRead)
                WHERE conversation_id = \(conversationId) AND user_id = \(userId)
                """,
                logger: logger
            )
            return (newDelivered, newRead, true)
        }
        return nil
    }
}
