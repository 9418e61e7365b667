import Logging
import PostgresNIO

// Statements that every batch of a consumer runs are prepared once per connection
// (`PostgresPreparedStatement`), so each is parsed and described once; at low rates every batch
// is a batch of one. Each execution is still planned for its own arrays and the tables as they
// are (`plan_cache_mode` in `DatabaseConfiguration`), except inside a function that asks for
// plans made once (messages' `lock_with_members`, `store_messages` and `store_messages_as_known`).
// Other statements stay plain queries.

extension PostgresBindings {
    /// The values of a prepared statement's `$1`, `$2`, … in that order.
    public init(_ values: any PostgresDynamicTypeEncodable...) {
        self.init(capacity: values.count)
        for value in values { append(value) }
    }
}

extension PostgresConnection {
    /// Runs a prepared statement that returns no rows. (PostgresNIO's `execute` overload that
    /// returns the command tag can trap on a stream it has not drained; this one drains it.)
    public func run<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws where Statement.Row == () {
        for try await _ in try await execute(statement, logger: logger) {}
    }
}
