import EventBus
import Foundation
import PostgresNIO
import PostgresSupport

/// The statements every batch writes and relays, prepared once per connection (parsed once,
/// planned for each batch: see `DatabaseConfiguration`).
enum OutboxStatements {
    /// Adds events; bodies are UTF-8 JSON, sent as text and stored as bytes.
    struct Enqueue: PostgresPreparedStatement {
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

    /// Claims the oldest rows ready to publish for `seconds` (pushing their `next_attempt_at` past
    /// the round), in one statement outside any transaction: another relay skips them, and a relay
    /// that dies mid-round leaves them to be taken again when the claim runs out. Rows another
    /// relay is claiming at this moment are skipped. A claim lost in a crash costs a republish at
    /// most, so its commit need not wait for the disk. The rows come back in no order.
    struct Claim: PostgresPreparedStatement {
        static let sql = """
            WITH commit_without_flush AS (SELECT set_config('synchronous_commit', 'off', true)),
            ready AS (
                SELECT position FROM outbox
                WHERE published_at IS NULL AND next_attempt_at <= now()
                ORDER BY position
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => $2)
            FROM ready, commit_without_flush
            WHERE o.position = ready.position
            RETURNING o.position, o.event_id, o.exchange, o.routing_key, o.event_type, o.body
            """
        typealias Row = (Int64, String, String, String, String, ByteBuffer)
        let limit: Int
        let seconds: Double

        func makeBindings() -> PostgresBindings { PostgresBindings(limit, seconds) }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Gives claimed rows back at once (their publish failed): the next round takes them first.
    struct Release: PostgresPreparedStatement {
        static let sql = "UPDATE outbox SET next_attempt_at = now() WHERE position = ANY($1::int8[])"
        typealias Row = ()
        let positions: [Int64]

        func makeBindings() -> PostgresBindings { PostgresBindings(positions) }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }

    /// Published rows are gone at once: the table holds only what still waits. The commit need not
    /// wait for the disk (a delete lost in a crash costs a republish, which idempotent consumers
    /// absorb); the setting rides on this statement (a one-row CTE, evaluated once) rather than
    /// costing a round trip of its own.
    struct Delete: PostgresPreparedStatement {
        static let sql = """
            WITH commit_without_flush AS (SELECT set_config('synchronous_commit', 'off', true))
            DELETE FROM outbox USING commit_without_flush WHERE position = ANY($1::int8[])
            """
        typealias Row = ()
        let positions: [Int64]

        func makeBindings() -> PostgresBindings { PostgresBindings(positions) }
        func decodeRow(_ row: PostgresRow) throws -> Row {}
    }
}
