import EventBus
import EventContracts
import Foundation
import Outbox
import PostgresNIO
import PostgresSupport

/// The statements every batch of sends runs (the member read serves receipts and membership
/// changes too), prepared once per connection, so parsed once; each execution is still planned
/// for its batch (see `DatabaseConfiguration`), except the statements inside `lock_with_members`,
/// `store_messages` and `store_messages_as_known`, planned once per connection.
enum MessagesStatements {
    /// Messages already stored for these (sender, clientMsgId) pairs.
    struct StoredSends: PostgresPreparedStatement {
        static let name = "messages_stored_sends"
        static let sql = """
            SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.client_msg_id, m.body, m.sent_at
            FROM unnest($1::text[], $2::text[]) AS s(sender_id, client_msg_id)
            JOIN messages m ON m.sender_id = s.sender_id AND m.client_msg_id = s.client_msg_id
            """
        typealias Row = MessageRecord
        let senderIds: [String]
        let clientMsgIds: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(senderIds)
            bindings.append(clientMsgIds)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.read(MessageRecord.init(reading:)) }
    }

    /// Locks the conversations (in id order, as every writer of a conversation does) and then reads
    /// their last seq, members' version and members, in one round trip: `lock_with_members`
    /// (migrations 0004, 0005 and 0007) reads the
    /// members in a statement of its own, after the locks are held, and plans its two statements
    /// once per connection, not per batch. One row per member; a conversation with none has one
    /// row without a member.
    struct LockWithMembers: PostgresPreparedStatement {
        static let name = "messages_lock_with_members"
        static let sql = "SELECT conversation_id, last_seq, members_version, type, user_id, deleted FROM lock_with_members($1::text[])"
        typealias Row = (String, Int64, Int64, String, String?, Bool?)
        let ids: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(ids)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.read { reader in try (reader.next(), reader.next(), reader.next(), reader.next(), reader.next(), reader.next()) }
        }
    }

    /// The members of conversations, and whether each one's account was deleted.
    struct Members: PostgresPreparedStatement {
        static let name = "messages_members"
        static let sql = """
            SELECT m.conversation_id, m.user_id, k.deleted_at IS NOT NULL
            FROM members m LEFT JOIN known_users k ON k.id = m.user_id
            WHERE m.conversation_id = ANY($1::text[]) ORDER BY m.conversation_id, m.user_id
            """
        typealias Row = (String, String, Bool)
        let conversationIds: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(conversationIds)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.read { reader in try (reader.next(), reader.next(), reader.next()) } }
    }

    /// Inserts the messages, advances the conversations' `last_seq` and the senders' markers, and
    /// writes their announcement to the outbox, handed off (`MessageSending` hands it to the relay
    /// after the commit): the whole batch in one round trip. `store_messages`
    /// (migration 0006) plans its statements once per connection, not per batch; the outbox rows
    /// are written beside it by `Outbox.insertion`, as every outbox write is. (A statement in
    /// `WITH` runs to completion whether or not anything reads it.)
    struct InsertMessages: PostgresPreparedStatement {
        static let name = "messages_insert_messages"
        static let sql = """
            WITH announced AS (
                \(Outbox.insertion(firstParameter: 13, handedOff: true))
            )
            SELECT store_messages(
                $1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::timestamptz, $8::text[], $9::int8[],
                $10::text[], $11::text[], $12::int8[])
            """
        typealias Row = ()
        let rows: MessageRows
        let sentAt: Date
        /// The conversations these rows advance, and each one's new `last_seq`.
        let advancedIds: [String]
        let lastSeqs: [Int64]
        /// Each sender's highest new seq per conversation.
        let markedConversationIds: [String]
        let markedUserIds: [String]
        let markedSeqs: [Int64]
        /// The outbox rows announcing these messages.
        let announcements: [OutgoingMessage]

        /// `lastSeq`: every locked conversation's last seq after the batch (those with no new row
        /// are left alone); `senderMarks`: each sender's highest new seq per conversation.
        init(rows: MessageRows, sentAt: Date, lastSeq: [String: Int64], senderMarks: [MemberKey: Int64], announcements: [OutgoingMessage]) {
            self.rows = rows
            self.announcements = announcements
            self.sentAt = sentAt
            let advanced = Set(rows.conversationIds)
            let newLastSeqs = lastSeq.filter { advanced.contains($0.key) }
            advancedIds = Array(newLastSeqs.keys)
            lastSeqs = Array(newLastSeqs.values)
            markedConversationIds = senderMarks.keys.map(\.conversationId)
            markedUserIds = senderMarks.keys.map(\.userId)
            markedSeqs = Array(senderMarks.values)
        }

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 17)
            bind(to: &bindings)
            return bindings
        }

        /// `store_messages`'s twelve arguments, then the outbox rows' five.
        func bind(to bindings: inout PostgresBindings) {
            rows.bind(to: &bindings)
            bindings.append(sentAt)
            bindings.append(advancedIds)
            bindings.append(lastSeqs)
            bindings.append(markedConversationIds)
            bindings.append(markedUserIds)
            bindings.append(markedSeqs)
            Outbox.bind(announcements, to: &bindings)
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }
}

extension MessagesStatements {
    /// `InsertMessages` with no transaction around it, once `store_messages_as_known` (migration
    /// 0007) found each conversation at the last seq and members' version the batch was built on;
    /// otherwise it fails with SQLSTATE SC001 and writes nothing, the outbox rows included (one
    /// statement).
    struct InsertMessagesAsKnown: PostgresPreparedStatement {
        static let name = "messages_insert_messages_as_known"
        static let sql = """
            WITH announced AS (
                \(Outbox.insertion(firstParameter: 16, handedOff: true))
            )
            SELECT store_messages_as_known(
                $1::text[], $2::int8[], $3::int8[],
                $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::timestamptz, $11::text[], $12::int8[],
                $13::text[], $14::text[], $15::int8[])
            """
        typealias Row = ()
        let knownIds: [String]
        let knownLastSeqs: [Int64]
        let knownVersions: [Int64]
        let insert: InsertMessages

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 20)
            bindings.append(knownIds)
            bindings.append(knownLastSeqs)
            bindings.append(knownVersions)
            insert.bind(to: &bindings)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }
}

/// Columns of the messages a batch inserts, as arrays for `unnest`.
struct MessageRows {
    var ids: [String] = []
    var conversationIds: [String] = []
    var seqs: [Int64] = []
    var senderIds: [String] = []
    var clientMsgIds: [String] = []
    var bodies: [String] = []

    mutating func append(_ message: MessageRecord) {
        ids.append(message.id)
        conversationIds.append(message.conversationId)
        seqs.append(message.seq)
        senderIds.append(message.senderId)
        clientMsgIds.append(message.clientMsgId)
        bodies.append(message.body)
    }

    /// The six columns, in this order, as `store_messages` takes them.
    func bind(to bindings: inout PostgresBindings) {
        bindings.append(ids)
        bindings.append(conversationIds)
        bindings.append(seqs)
        bindings.append(senderIds)
        bindings.append(clientMsgIds)
        bindings.append(bodies)
    }
}

extension MessageRecord {
    /// Reads `id, conversation_id, seq, sender_id, client_msg_id, body, sent_at`.
    init(reading reader: inout PostgresRowReader) throws {
        try self.init(
            id: reader.next(), conversationId: reader.next(), seq: reader.next(), senderId: reader.next(), clientMsgId: reader.next(), body: reader.next(),
            sentAt: reader.next())
    }
}
