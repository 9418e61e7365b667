import Logging
import PostgresNIO

// Statements that every batch of a consumer runs are prepared once per connection
// (`PostgresPreparedStatement`), so each is parsed and described once; at low rates every batch
// is a batch of one. Each execution is still planned for its own arrays and the tables as they
// are (`plan_cache_mode` in `DatabaseConfiguration`), except inside a function that asks for
// plans made once (messages' `lock_with_members`, `store_messages` and `store_messages_as_known`).
// Other statements stay plain queries.
//
// Each statement declares its `name` as a constant, unique among all the statements one connection
// runs (Outbox's and `RecordProcessed` run in every service): PostgresNIO's default, the type's
// name, is written out with `String(reflecting:)` on every execution. And each appends its values
// to its bindings one by one, each as its own type: passed as `any PostgresDynamicTypeEncodable`
// (or through a parameter pack, which the optimizer does not specialize value by value), every
// element of every array went through PostgresNIO's generic code, which looks up type metadata as
// it goes (see the README's Benchmark).

extension PostgresConnection {
    /// Runs a prepared statement that returns no rows. (PostgresNIO's `execute` overload that
    /// returns the command tag can trap on a stream it has not drained; this one drains it.)
    public func run<Statement: PostgresPreparedStatement>(_ statement: Statement, logger: Logger) async throws where Statement.Row == () {
        for try await _ in try await execute(statement, logger: logger) {}
    }
}
