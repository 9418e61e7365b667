import EventBus
import Foundation
import PostgresNIO
import PostgresSupport

/// The statements every batch writes and relays, prepared once per connection (parsed once,
/// planned for each batch: see `DatabaseConfiguration`).
enum OutboxStatements {
    /// A one-row `WITH` member (evaluated once) that lets the transaction around its statement
    /// commit without waiting for the disk: a relay's deletes, which a crash can only undo into a
    /// republish that consumers absorb. It saves the round trip a `SET LOCAL` would take.
    static let commitWithoutFlush = "commit_without_flush AS (SELECT set_config('synchronous_commit', 'off', true))"

    /// Adds events; bodies are UTF-8 JSON, sent as text and stored as bytes.
    struct Enqueue: PostgresPreparedStatement {
        static let name = "outbox_enqueue"
        static let sql = Outbox.insertion(firstParameter: 1)
        typealias Row = ()
        let messages: [OutgoingMessage]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            Outbox.bind(messages, to: &bindings)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }

    /// The oldest rows ready to publish, taken out of the outbox in the caller's transaction (rows
    /// another relay holds are skipped): they are gone for good only if it commits, which the relay
    /// does once the broker confirmed them. The commit need not wait for the disk (see
    /// `OutboxRelay`); the setting rides on this statement (`commitWithoutFlush`), so a
    /// round is three round trips to Postgres: the begin, this, the commit. `RETURNING` keeps no
    /// order.
    struct Take: PostgresPreparedStatement {
        static let name = "outbox_take"
        static let sql = """
            WITH \(commitWithoutFlush)
            DELETE FROM outbox USING commit_without_flush
            WHERE position = ANY(ARRAY(
                SELECT position FROM outbox
                WHERE published_at IS NULL AND next_attempt_at <= now()
                ORDER BY position
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ))
            RETURNING position, event_id, exchange, routing_key, event_type, body
            """
        typealias Row = (Int64, String, String, String, String, ByteBuffer)
        let limit: Int

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(limit)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.read { reader in try (reader.next(), reader.next(), reader.next(), reader.next(), reader.next(), reader.next()) }
        }
    }

    /// Rows published outside a round, by event id: a hand-off's (see `OutboxRelay.handOff`), in
    /// a transaction of its own, and those a partly refused round had confirmed. It need not wait
    /// for the disk either: a delete lost in a crash has the rows published again (a hand-off's after
    /// its hold), which consumers absorb.
    struct Delete: PostgresPreparedStatement {
        static let name = "outbox_delete"
        static let sql = """
            WITH \(commitWithoutFlush)
            DELETE FROM outbox USING commit_without_flush WHERE event_id = ANY($1::text[])
            """
        typealias Row = ()
        let eventIDs: [String]

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(eventIDs)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }
}
