import Logging
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

@Suite("Migrations on the real Postgres")
struct MigrationRunnerTests {
    let logger = TestStack.logger

    @Test("two runners starting at the same moment apply each migration once")
    func concurrentRunnersApplyOnce() async throws {
        let schema = TestStack.uniqueSchema("migrate")
        let logger = logger
        let migrations = [
            Migration(id: "0001_counter", sql: "CREATE TABLE runs (n integer); INSERT INTO runs VALUES (1);"),
            // Not idempotent on purpose: applying it twice would fail or double the rows.
            Migration(id: "0002_more", sql: "ALTER TABLE runs ADD COLUMN note text; INSERT INTO runs VALUES (2, 'second');"),
        ]
        try await TestStack.withDatabase(schema: schema) { client in
            // A second, independent pool: separate sessions, as two processes would have.
            try await TestStack.database(schema: schema).makeClient(logger: logger).whileRunning { other in
                let runner = MigrationRunner(schema: schema, migrations: migrations)
                async let first = runner.run(on: client, logger: logger)
                async let second = runner.run(on: other, logger: logger)
                let applied = try await [first, second]
                #expect(applied.flatMap { $0 }.sorted() == ["0001_counter", "0002_more"])
                #expect(applied.contains([]))
            }
            let rows = try await client.query("SELECT n FROM \(unescaped: schema.rawValue).runs ORDER BY n").decode(Int.self)
            var values: [Int] = []
            for try await value in rows { values.append(value) }
            #expect(values == [1, 2])
            // Running again is a no-op.
            #expect(try await MigrationRunner(schema: schema, migrations: migrations).run(on: client, logger: logger).isEmpty)
        }
    }

    @Test("a failing migration leaves the schema as it was and is not recorded")
    func failingMigrationRollsBack() async throws {
        let schema = TestStack.uniqueSchema("failing")
        let logger = logger
        try await TestStack.withDatabase(schema: schema) { client in
            let good = Migration(id: "0001_good", sql: "CREATE TABLE kept (id integer);")
            let bad = Migration(id: "0002_bad", sql: "CREATE TABLE half_done (id integer); INSERT INTO kept VALUES (1); SELECT 1/0;")
            let runner = MigrationRunner(schema: schema, migrations: [good, bad])
            await #expect(throws: MigrationError.self) { try await runner.run(on: client, logger: logger) }

            #expect(try await Self.tables(in: schema, client) == ["kept", "schema_migrations"])
            let kept = try await client.query("SELECT count(*)::int FROM \(unescaped: schema.rawValue).kept").decode(Int.self)
            for try await count in kept { #expect(count == 0) }
            let recorded = try await client.query("SELECT id FROM \(unescaped: schema.rawValue).schema_migrations").decode(String.self)
            var ids: [String] = []
            for try await id in recorded { ids.append(id) }
            #expect(ids == ["0001_good"])

            // Fixed, it applies on the next start.
            let fixed = Migration(id: "0002_bad", sql: "CREATE TABLE half_done (id integer);")
            #expect(try await MigrationRunner(schema: schema, migrations: [good, fixed]).run(on: client, logger: logger) == ["0002_bad"])
        }
    }

    static func tables(in schema: SchemaName, _ client: PostgresClient) async throws -> [String] {
        var names: [String] = []
        let rows = try await client.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = \(schema.rawValue) ORDER BY table_name"
        ).decode(String.self)
        for try await name in rows { names.append(name) }
        return names
    }
}
