import Foundation
import PostgresNIO
import PostgresSupport

/// The statements every batch of stored messages runs, prepared once per connection (parsed
/// once, planned for each batch: see `DatabaseConfiguration`).
enum NotificationStatements {
    /// A notification with its user: user id, id, kind, payload, count, created at, read.
    typealias RowWithUser = (String, String, String, String, Int, Date, Bool)

    static func rowWithUser(_ row: PostgresRow) throws -> RowWithUser {
        try row.read { reader in try (reader.next(), reader.next(), reader.next(), reader.next(), reader.next(), reader.next(), reader.next()) }
    }

    /// The conversations' types and names, for the notifications' payloads.
    struct ConversationNames: PostgresPreparedStatement {
        static let name = "notifications_conversation_names"
        static let sql = "SELECT id, type, name FROM conversations WHERE id = ANY($1::text[])"
        typealias Row = (String, String, String?)
        let ids: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(ids)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.read { reader in try (reader.next(), reader.next(), reader.next()) } }
    }

    /// The users among `ids` with no chat connection open, as presence last said.
    ///
    /// Joined on the key alone, `online` checked after: with `AND p.online` inside the join the
    /// planner sized the presence side by the `online` statistics, and statistics taken while
    /// everyone was offline (users who signed up, not yet connected) made it a nested loop over
    /// every online row for each id, 12 ms instead of 0.5 ms for 190 ids among 2,000 users.
    struct OfflineUsers: PostgresPreparedStatement {
        static let name = "notifications_offline_users"
        static let sql = """
            SELECT u.id FROM unnest($1::text[]) AS u(id)
            LEFT JOIN presence p ON p.user_id = u.id
            WHERE p.online IS NOT TRUE
            """
        typealias Row = String
        let ids: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(ids)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// One message notification per (member, conversation), for members offline (`OfflineUsers`)
    /// but for deleted accounts (a send stored before messages applied the deletion comes late):
    /// new, or raised by the messages' count (restarted once it was read). Events need not come in
    /// seq order (an event the outbox relay published late, after its hold): an older message
    /// still counts while the notification is unread, and shows no payload over a newer one; once
    /// read, only a newer message raises it again.
    struct RecordMessages: PostgresPreparedStatement {
        static let name = "notifications_record_messages"
        static let sql = """
            INSERT INTO notifications AS n
                (id, user_id, kind, group_key, conversation_id, actor_id, payload, count, last_seq, created_at)
            SELECT r.id, r.user_id, 'message', 'message:' || r.conversation_id, r.conversation_id, NULL, ($4::text[])[r.payload::int4]::jsonb,
                   r.count, r.last_seq, r.created_at
            FROM unnest($1::text[], $2::text[], $3::text[], $5::int8[], $6::int8[], $7::int8[], $8::timestamptz[])
                 AS r(id, user_id, conversation_id, payload, count, last_seq, created_at)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users d WHERE d.id = r.user_id)
            ON CONFLICT (user_id, group_key) DO UPDATE SET
                count = CASE WHEN n.read THEN EXCLUDED.count ELSE n.count + EXCLUDED.count END,
                created_at = CASE WHEN n.read THEN EXCLUDED.created_at ELSE n.created_at END,
                payload = CASE WHEN n.last_seq IS NULL OR n.last_seq < EXCLUDED.last_seq THEN EXCLUDED.payload ELSE n.payload END,
                last_seq = GREATEST(n.last_seq, EXCLUDED.last_seq),
                read = false,
                position = nextval('notification_positions')
            WHERE n.last_seq IS NULL OR n.last_seq < EXCLUDED.last_seq OR NOT n.read
            RETURNING n.user_id, n.id, n.kind, n.payload::text, n.count, n.created_at, n.read
            """
        typealias Row = RowWithUser
        let ids: [String]
        let userIds: [String]
        let conversationIds: [String]
        /// The distinct payloads; each row names its own by place (`payloadIndices`, from 1).
        let payloads: [String]
        let payloadIndices: [Int]
        let counts: [Int]
        let lastSeqs: [Int64]
        let times: [Date]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 8)
            bindings.append(ids)
            bindings.append(userIds)
            bindings.append(conversationIds)
            bindings.append(payloads)
            bindings.append(payloadIndices)
            bindings.append(counts)
            bindings.append(lastSeqs)
            bindings.append(times)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try NotificationStatements.rowWithUser(row) }
    }
}
