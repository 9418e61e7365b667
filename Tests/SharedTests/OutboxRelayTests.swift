import EventBus
import Foundation
import Outbox
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

/// The relay against the real Postgres and RabbitMQ: order, once, and the rows it cannot route.
@Suite("Outbox relay")
struct OutboxRelayTests {
    let logger = TestStack.logger

    @Test("rows written before and while the relay runs go out once each and in order, over rounds of a full take and single commits")
    func publishesInOrderOverSeveralRounds() async throws {
        try await withRelay(batchSize: 16) { outbox, relay, client, schema, queue in
            // Ready before the relay starts: several full takes in a row.
            try await write(0..<100, through: outbox, on: client, queue: queue)
            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                // Then one commit at a time, each announced, while rounds are under way; some
                // commits hold more rows than a take.
                var next = 100
                for size in [1, 1, 40, 1, 3, 1, 1, 25, 1, 1] + Array(repeating: 2, count: 100) {
                    try await write(next..<(next + size), through: outbox, on: client, queue: queue)
                    relay.notify()
                    next += size
                }
                let total = next
                #expect(await eventually(timeout: .seconds(30)) { received.count >= total })
                #expect(received.all == Array(0..<total), "published out of order, twice, or not at all")
                let emptied = try await eventually(timeout: .seconds(10)) { try await waiting(client, schema).isEmpty }
                #expect(emptied)
            }
        }
    }

    @Test("a row the broker cannot route waits with a growing delay; the rows around it go out in order")
    func unroutableRowWaits() async throws {
        try await withRelay(batchSize: 4) { outbox, relay, client, schema, queue in
            try await write(0..<10, through: outbox, on: client, queue: queue)
            var unroutable = try probeMessage(10, queue: queue)
            unroutable.routingKey = "test.probe.nowhere.\(queue)"  // no queue is bound to it
            let nowhere = unroutable
            try await client.withTransaction(logger: logger) { try await outbox.enqueue(nowhere, on: $0, logger: logger) }
            try await write(11..<20, through: outbox, on: client, queue: queue)

            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                relay.notify()
                #expect(await eventually(timeout: .seconds(30)) { received.count >= 19 })
                #expect(received.all == Array(0..<10) + Array(11..<20))
                // Tried once at least (retried after 1 s, then 2, …), and still there.
                let waitsAlone = try await eventually(timeout: .seconds(10)) {
                    let rows = try await waiting(client, schema)
                    return rows.count == 1 && rows[0].eventID == nowhere.messageId && rows[0].attempts >= 1
                }
                #expect(waitsAlone)
            }
        }
    }

    // MARK: - Helpers

    private struct WaitingRow {
        var eventID: String
        var attempts: Int
    }

    /// A schema with the outbox, a probe queue, and a relay over them (not yet running).
    private func withRelay(
        batchSize: Int,
        _ body: @Sendable (Outbox, OutboxRelay, PostgresClient, SchemaName, String) async throws -> Void
    ) async throws {
        let configuration = TestStack.amqp()
        let schema = TestStack.uniqueSchema("relay")
        let queue = TestStack.uniqueName("relay")
        try await EventBusAdmin.declare(probeTopology(queue: queue), configuration: configuration)
        try await TestStack.withDatabase(schema: schema) { client in
            try await MigrationRunner(schema: schema, migrations: try Outbox.migrations()).run(on: client, logger: logger)
            let publisher = EventPublisher(configuration: configuration, logger: logger)
            let relay = OutboxRelay(
                client: client, schema: schema, publisher: publisher, logger: logger, batchSize: batchSize, pollInterval: .milliseconds(200))
            try await body(Outbox(), relay, client, schema, queue)
        }
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    /// Probes `sequences`, in one transaction.
    private func write(_ sequences: Range<Int>, through outbox: Outbox, on client: PostgresClient, queue: String) async throws {
        let messages = try sequences.map { try probeMessage($0, queue: queue) }
        try await client.withTransaction(logger: logger) { connection in
            try await outbox.enqueue(messages, on: connection, logger: logger)
        }
    }

    /// The rows still in the outbox, in order.
    private func waiting(_ client: PostgresClient, _ schema: SchemaName) async throws -> [WaitingRow] {
        var rows: [WaitingRow] = []
        for try await (eventID, attempts) in try await client.query(
            "SELECT event_id, attempts FROM \(unescaped: schema.rawValue).outbox ORDER BY position"
        ).decode((String, Int).self) {
            rows.append(WaitingRow(eventID: eventID, attempts: attempts))
        }
        return rows
    }
}
