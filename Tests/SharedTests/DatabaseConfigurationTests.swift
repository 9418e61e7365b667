import PostgresNIO
import PostgresSupport
import ServiceConfig
import StackTesting
import Testing

@Suite("A service's Postgres pool: its size, its keep-alive, its connections' names")
struct DatabaseConfigurationTests {
    private static func configuration(_ values: [String: String]) throws -> DatabaseConfiguration {
        try DatabaseConfiguration(environment: EnvironmentReader(values), defaultSchema: "messages")
    }

    @Test("by default an idle connection is checked after 30 s and none is kept open; the keep-alive can be set or turned off")
    func defaultsAndSettings() throws {
        let defaults = try Self.configuration([:])
        #expect(defaults.maximumConnections == 20)
        #expect(defaults.keepAlive == .seconds(30))
        #expect(defaults.clientConfiguration().options.keepAliveBehavior?.frequency == .seconds(30))
        #expect(defaults.clientConfiguration().options.minimumConnections == 0)

        let set = try Self.configuration(["DATABASE_POOL_SIZE": "6", "DATABASE_KEEPALIVE_SECONDS": "45"])
        #expect(set.keepAlive == .seconds(45))
        #expect(set.clientConfiguration().options.maximumConnections == 6)
        #expect(set.clientConfiguration().options.keepAliveBehavior?.frequency == .seconds(45))
        let off = try Self.configuration(["DATABASE_KEEPALIVE_SECONDS": "0"])
        #expect(off.keepAlive == nil)
        #expect(off.clientConfiguration().options.keepAliveBehavior == nil)
    }

    @Test("a running pool's connections carry its schema as their name; it opens them on demand and closes them when it stops")
    func connectionsNamedBySchema() async throws {
        let schema = TestStack.uniqueSchema("pool")
        var database = TestStack.database(schema: schema)
        database.maximumConnections = 6
        let pool = database.makeClient(logger: .init(label: "pool"))
        try await TestStack.withClient(schema: TestStack.uniqueSchema("observer")) { observer in
            @Sendable func open() async throws -> Int {
                let rows = try await observer.query(
                    "SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = \(schema.rawValue)")
                return Int(try await rows.decode(Int64.self).reduce(0, +))
            }
            try await pool.whileRunning { pool in
                #expect(try await open() == 0)  // nothing asked for yet
                // Five queries at once: five connections, each named by the schema.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 1...5 { group.addTask { _ = try await pool.query("SELECT pg_sleep(0.3)") } }
                    try await group.waitForAll()
                }
                #expect(try await open() == 5)
            }
            #expect(try await eventually { try await open() == 0 })
        }
    }
}
