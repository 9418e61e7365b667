import InMemoryLogging
import Logging
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

@Suite("A Postgres client run for one piece of work")
struct PostgresClientRunningTests {
    @Test("its work starts once the pool runs: a lease before that is what PostgresNIO warns of, and whileRunning never makes one")
    func noLeaseBeforeThePoolRuns() async throws {
        // The warning is real and this test sees it: a query leased before `run()` logs it.
        let early = InMemoryLogHandler()
        let client = TestStack.database(schema: TestStack.uniqueSchema("running")).makeClient(logger: early.warningsLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await client.query("SELECT 1") }  // waits for the pool, once it warned
            #expect(await eventually { early.messages.contains { $0.contains("run()` hasn't been called yet") } })
            group.addTask { await client.run() }
            try await group.next()
            group.cancelAll()
        }

        // Each client started by whileRunning answers its first query, and nothing is logged.
        let warnings = InMemoryLogHandler()
        for attempt in Int64(1)...20 {
            let client = TestStack.database(schema: TestStack.uniqueSchema("running")).makeClient(logger: warnings.warningsLogger)
            let values = try await client.whileRunning { client in
                var values: [Int64] = []
                for try await value in try await client.query("SELECT \(attempt)::int8").decode(Int64.self) { values.append(value) }
                return values
            }
            #expect(values == [attempt])
        }
        #expect(warnings.messages == [])
    }
}
