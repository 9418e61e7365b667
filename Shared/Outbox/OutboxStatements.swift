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

    /// The oldest rows ready to publish, locked; rows another relay holds are skipped.
    struct TakeReady: PostgresPreparedStatement {
        static let sql = """
            SELECT position, event_id, exchange, routing_key, event_type, body
            FROM outbox
            WHERE published_at IS NULL AND next_attempt_at <= now()
            ORDER BY position
            LIMIT $1
            FOR UPDATE SKIP LOCKED
            """
        typealias Row = (Int64, String, String, String, String, ByteBuffer)
        let limit: Int

        func makeBindings() -> PostgresBindings { PostgresBindings(limit) }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Published rows are gone at once: the table holds only what still waits. The transaction's
    /// commit need not wait for the disk (see `OutboxRelay`); the setting rides on this statement
    /// (a one-row CTE, evaluated once) rather than costing a round trip of its own.
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
