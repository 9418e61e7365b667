import BlockingExecutor
import NIOPosix
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

@Suite("A service's event loop as its task executor")
struct EventLoopTaskExecutorTests {
    @Test("work that prefers the loop runs on it, and is resumed on it after each Postgres round trip on a client that lives there")
    func staysOnTheLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let executor = EventLoopTaskExecutor(loop)
        let client = TestStack.database(schema: TestStack.uniqueSchema("executor")).makeClient(logger: TestStack.logger, eventLoopGroup: loop)
        try await client.whileRunning { client in
            let observed = try await withTaskExecutorPreference(executor) {
                var onLoop = [loop.inEventLoop]
                var values: [Int64] = []
                for n in Int64(1)...3 {
                    let rows = try await client.query("SELECT \(n)::int8")
                    for try await value in rows.decode(Int64.self) { values.append(value) }
                    onLoop.append(loop.inEventLoop)
                }
                // Child tasks (a service group's services, their task groups) inherit the preference.
                async let child = loop.inEventLoop
                onLoop.append(await child)
                return (onLoop, values)
            }
            #expect(observed.1 == [1, 2, 3])
            #expect(observed.0 == [true, true, true, true, true])
        }
    }
}
