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
    /// `true` for a deleted account; absent otherwise.
    public let deleted: Bool?

    init(userId: String, role: String, deliveredSeq: Int64, readSeq: Int64, deleted: Bool) {
        self.userId = userId
        self.role = role
        self.deliveredSeq = deliveredSeq
        self.readSeq = readSeq
        self.deleted = deleted ? true : nil
    }
}

/// `GET /api/conversations/{id}`.
public struct ConversationDetails: Codable, Sendable, Equatable {
    public let id: String
    public let type: String
    @ExplicitNull public var name: String?
    public let members: [MemberState]
    public let lastSeq: Int64

    var snapshot: ConversationSnapshot {
        ConversationSnapshot(
            id: id, type: type, name: name, members: members.map { ConversationMember(userId: $0.userId, role: $0.role, deleted: $0.deleted == true) },
            lastSeq: lastSeq
        )
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

extension ConversationSummary {
    /// Reads `id, type, name, last_seq`, the reader's `read_seq`, and the last message's `id, seq,
    /// sender_id, client_msg_id, body, sent_at` (all null when there is none); members come apart.
    init(reading reader: inout PostgresRowReader) throws {
        let (id, type, name, lastSeq, readSeq): (String, String, String?, Int64, Int64) = try (
            reader.next(), reader.next(), reader.next(), reader.next(), reader.next()
        )
        let (messageId, seq, sender, clientId, body, sentAt): (String?, Int64?, String?, String?, String?, Date?) = try (
            reader.next(), reader.next(), reader.next(), reader.next(), reader.next(), reader.next()
        )
        var lastMessage: MessageRecord?
        if let messageId, let seq, let sender, let clientId, let body, let sentAt {
            lastMessage = MessageRecord(id: messageId, conversationId: id, seq: seq, senderId: sender, clientMsgId: clientId, body: body, sentAt: sentAt)
        }
        self.init(
            id: id, type: type, name: name, members: [], lastMessage: lastMessage, lastSeq: lastSeq, unreadCount: max(0, lastSeq - readSeq), myReadSeq: readSeq)
    }
}

/// Every SQL statement of messages, against its own schema.
struct MessagesStore: Sendable {
    let logger: Logger
    /// The conversations sends were stored to lately, as the store last saw them.
    let known = KnownConversations()

    // MARK: Known users (from UserEvents)

    /// A registered account; one already written as deleted stays deleted (see `markDeleted`).
    func rememberUser(id: String, username: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO known_users (id, username) VALUES (\(id), \(username)) ON CONFLICT (id) DO NOTHING",
            logger: logger
        )
    }

    /// A deleted account: marked, not removed, so its messages and member entries keep their
    /// meaning. Returns the groups where it was the last admin, for `promoteSuccessor`.
    ///
    /// An account not heard of yet (its registration may come after its deletion: a retried batch,
    /// another replica's batch) is written as deleted, so the registration finds it and changes
    /// nothing; the key orders the two when replicas apply them at once. Its name is not read. It
    /// may be in conversations already (a creator's own account is not looked up): the insert moves
    /// their members' version on, as the update does (migrations 0007 and 0008).
    func markDeleted(id: String, on connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            """
            INSERT INTO known_users AS k (id, username, deleted_at) VALUES (\(id), '', now())
            ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at WHERE k.deleted_at IS NULL
            """,
            logger: logger
        )
        let rows = try await connection.query(
            """
            SELECT m.conversation_id FROM members m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.user_id = \(id) AND m.role = 'admin' AND c.type = 'group'
            """,
            logger: logger
        )
        var groups: [String] = []
        for try await conversationId in rows.decode(String.self) { groups.append(conversationId) }
        return groups
    }

    /// The users of `ids` this service has heard of, deleted ones included.
    func heardOf(_ ids: [String], on connection: PostgresConnection) async throws -> Set<String> {
        var heard = Set<String>()
        let rows = try await connection.query("SELECT id FROM known_users WHERE id = ANY(\(ids))", logger: logger)
        for try await id in rows.decode(String.self) { heard.insert(id) }
        return heard
    }

    /// The users of `ids` that exist and are not deleted.
    func knownUsers(_ ids: [String], on connection: PostgresConnection) async throws -> Set<String> {
        var known = Set<String>()
        let rows = try await connection.query("SELECT id FROM known_users WHERE id = ANY(\(ids)) AND deleted_at IS NULL", logger: logger)
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
            INSERT INTO conversations (id, type, direct_key) VALUES (\(id), 'direct', \(key))
            ON CONFLICT (direct_key) DO NOTHING RETURNING id
            """,
            logger: logger
        )
        var created = false
        for try await _ in inserted { created = true }
        if created {
            try await insertMembers([me, other], role: "member", into: id, on: connection)
        }
        let existing = try await connection.query("SELECT id FROM conversations WHERE direct_key = \(key)", logger: logger)
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
            "INSERT INTO conversations (id, type, name) VALUES (\(id), 'group', \(name))",
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
            INSERT INTO members (conversation_id, user_id, role)
            SELECT \(conversationId), user_id, \(role) FROM unnest(\(userIds)) WITH ORDINALITY AS new(user_id, position) ORDER BY position
            """,
            logger: logger
        )
    }

    func details(of conversationId: String, on connection: PostgresConnection) async throws -> ConversationDetails? {
        let rows = try await connection.query(
            "SELECT id, type, name, last_seq FROM conversations WHERE id = \(conversationId)",
            logger: logger
        )
        let conversation = try await rows.readFirst { reader in
            try (reader.next(), reader.next(), reader.next(), reader.next()) as (id: String, type: String, name: String?, lastSeq: Int64)
        }
        guard let conversation else { return nil }
        let members = try await connection.query(
            """
            SELECT m.user_id, m.role, m.delivered_seq, m.read_seq, k.deleted_at IS NOT NULL
            FROM members m LEFT JOIN known_users k ON k.id = m.user_id
            WHERE m.conversation_id = \(conversation.id) ORDER BY m.joined_at, m.user_id
            """,
            logger: logger
        ).readAll { reader in
            try MemberState(userId: reader.next(), role: reader.next(), deliveredSeq: reader.next(), readSeq: reader.next(), deleted: reader.next())
        }
        return ConversationDetails(id: conversation.id, type: conversation.type, name: conversation.name, members: members, lastSeq: conversation.lastSeq)
    }

    /// The member's role, or nil when `userId` is not a member (or the conversation does not exist).
    func role(of userId: String, in conversationId: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query(
            "SELECT role FROM members WHERE conversation_id = \(conversationId) AND user_id = \(userId)",
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
            FROM members m
            JOIN conversations c ON c.id = m.conversation_id
            LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
            WHERE m.user_id = \(userId)
            ORDER BY c.last_activity DESC, c.id
            LIMIT 500
            """,
            logger: logger
        )
        var summaries = try await rows.readAll(ConversationSummary.init(reading:))
        // Members in one query for all conversations.
        var members: [String: [ConversationMember]] = [:]
        let memberRows = try await connection.query(
            """
            SELECT m.conversation_id, m.user_id, m.role, k.deleted_at IS NOT NULL
            FROM members m LEFT JOIN known_users k ON k.id = m.user_id
            WHERE m.conversation_id = ANY(\(summaries.map(\.id))) ORDER BY m.joined_at, m.user_id
            """,
            logger: logger
        )
        for (conversationId, member) in try await memberRows.readAll({ reader in
            try (reader.next() as String, ConversationMember(userId: reader.next(), role: reader.next(), deleted: reader.next()))
        }) {
            members[conversationId, default: []].append(member)
        }
        for index in summaries.indices { summaries[index].members = members[summaries[index].id] ?? [] }
        return summaries
    }

    /// Takes the conversation's row lock, as every writer of the conversation does (sends take it
    /// to assign seqs): membership changes and sends are ordered, so nothing stored after a
    /// removal goes to the removed member. The conversation's type, or nil when there is none.
    func lock(_ conversationId: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT type FROM conversations WHERE id = \(conversationId) FOR UPDATE", logger: logger)
        for try await type in rows.decode(String.self) { return type }
        return nil
    }

    /// Sets a member's role; false when `userId` is not a member.
    func setRole(_ role: String, of userId: String, in conversationId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE members SET role = \(role) WHERE conversation_id = \(conversationId) AND user_id = \(userId) RETURNING user_id",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    /// A group without a (live) admin makes its longest-standing live member one; who, or nil.
    func promoteSuccessor(in conversationId: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query(
            """
            WITH live AS (
                SELECT m.user_id, m.role, m.joined_at FROM members m JOIN known_users k ON k.id = m.user_id
                WHERE m.conversation_id = \(conversationId) AND k.deleted_at IS NULL
            ), successor AS (
                SELECT user_id FROM live WHERE NOT EXISTS (SELECT 1 FROM live WHERE role = 'admin')
                ORDER BY joined_at, user_id LIMIT 1
            )
            UPDATE members m SET role = 'admin' FROM successor s
            WHERE m.conversation_id = \(conversationId) AND m.user_id = s.user_id
            RETURNING m.user_id
            """,
            logger: logger
        )
        for try await userId in rows.decode(String.self) { return userId }
        return nil
    }

    func rename(_ conversationId: String, to name: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE conversations SET name = \(name) WHERE id = \(conversationId)",
            logger: logger
        )
    }

    /// Adds a member; false when already one.
    func addMember(_ userId: String, to conversationId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO members (conversation_id, user_id, role, delivered_seq, read_seq)
            SELECT id, \(userId), 'member', last_seq, last_seq FROM conversations WHERE id = \(conversationId)
            ON CONFLICT DO NOTHING RETURNING user_id
            """,
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    func removeMember(_ userId: String, from conversationId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM members WHERE conversation_id = \(conversationId) AND user_id = \(userId) RETURNING user_id",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    // MARK: Messages

    /// A page of messages in seq order: after `after`, or before `before` (the newest `limit` of
    /// those), or the newest `limit`.
    func messages(in conversationId: String, after: Int64?, before: Int64?, limit: Int, on connection: PostgresConnection) async throws -> [MessageRecord] {
        let query: PostgresQuery
        if let after {
            query = """
                SELECT id, conversation_id, seq, sender_id, client_msg_id, body, sent_at FROM messages
                WHERE conversation_id = \(conversationId) AND seq > \(after) AND seq < \(before ?? Int64.max)
                ORDER BY seq LIMIT \(limit)
                """
        } else {
            query = """
                SELECT * FROM (
                    SELECT id, conversation_id, seq, sender_id, client_msg_id, body, sent_at FROM messages
                    WHERE conversation_id = \(conversationId) AND seq < \(before ?? Int64.max)
                    ORDER BY seq DESC LIMIT \(limit)
                ) newest ORDER BY seq
                """
        }
        // A page is read whole (up to `MessageLimits.maxHistoryPage` rows): collected on the
        // connection's loop in one go, not handed over row by row.
        let page: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: logger)
        return try await page.get().rows.map { row in try row.read(MessageRecord.init(reading:)) }
    }
}
