import EventBus
import Foundation
import InMemoryLogging
import Logging
import Outbox
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

/// The relay against the real Postgres and RabbitMQ: order, nothing lost, and the rows it cannot
/// route. Its timer is set past the tests' end, so what it publishes, it publishes because it
/// was told of a commit (`notify`), and a drain goes on while its takes come back full.
@Suite("Outbox relay")
struct OutboxRelayTests {
    let logger = TestStack.logger

    @Test("one notice publishes a backlog of several full takes; then each commit, announced, goes out; all in order, none lost")
    func publishesInOrder() async throws {
        try await withRelay(batchSize: 16) { relay, client, schema, queue in
            try await write(0..<100, on: client, queue: queue)  // seven takes of 16
            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                relay.notify()
                #expect(await eventually(timeout: .seconds(30)) { received.count >= 100 })
                // Then one commit at a time while rounds are under way, some larger than a take.
                var next = 100
                for size in [1, 1, 40, 1, 3, 1, 1, 25, 1, 1] + Array(repeating: 2, count: 100) {
                    try await write(next..<(next + size), on: client, queue: queue)
                    relay.notify()
                    next += size
                }
                try await expectPublished(0..<next, received: received, client: client, schema: schema)
            }
        }
    }

    @Test("a row the broker cannot route stays, its attempt counted and its retry delayed; the rows around it go out in order")
    func unroutableRowWaits() async throws {
        try await withRelay(batchSize: 4) { relay, client, schema, queue in
            let nowhere = try unroutableProbe(10, queue: queue)
            try await write(0..<10, on: client, queue: queue)
            try await client.withTransaction(logger: logger) { try await Outbox().enqueue(nowhere, on: $0, logger: logger) }
            try await write(11..<20, on: client, queue: queue)

            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                relay.notify()
                #expect(await eventually(timeout: .seconds(30)) { received.firstArrivals.count >= 19 })
                #expect(received.firstArrivals == Array(0..<10) + Array(11..<20))
                // Tried once (no timer runs, and no notice came since), its retry at least the first
                // delay (1 s) after the attempt.
                let waits = try await eventually(timeout: .seconds(10)) {
                    let rows = try await outboxRows(client, schema)
                    return rows.count == 1 && rows[0].eventID == nowhere.messageId && rows[0].attempts == 1 && rows[0].nextAttemptAfterWrite >= 1
                }
                #expect(waits)
            }
        }
    }

    @Test(
        "handed-off events go out at once, in order, their rows deleted; rows whose writer never handed them over wait out their hold, then the rounds publish them"
    )
    func handOffs() async throws {
        try await withRelay(batchSize: 16) { relay, client, schema, queue in
            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                // Handed over a commit at a time: no notice, no round.
                for sizes in [0..<1, 1..<40, 40..<41, 41..<60] {
                    relay.handOff(try await writeHandedOff(sizes, on: client, queue: queue))
                }
                try await expectPublished(0..<60, received: received, client: client, schema: schema)

                // Written and committed, never handed over (its writer crashed): a round leaves
                // them to their writer for the hold, then takes them.
                _ = try await writeHandedOff(60..<70, on: client, queue: queue)
                await relay.drain()
                let held = try await outboxRows(client, schema)
                #expect(held.count == 10 && held.allSatisfy { $0.attempts == 0 && $0.nextAttemptAfterWrite > 5 }, "\(held)")
                try await client.query("UPDATE \(unescaped: schema.rawValue).outbox SET next_attempt_at = now()")  // the hold is over
                relay.notify()
                try await expectPublished(0..<70, received: received, client: client, schema: schema)
            }
        }
    }

    @Test("a handed-off event the broker cannot route keeps its row, held; the event handed over with it goes out and its row goes")
    func unroutableHandOffStays() async throws {
        try await withRelay(batchSize: 16) { relay, client, schema, queue in
            let nowhere = try unroutableProbe(0, queue: queue)
            let routable = try probeMessage(1, queue: queue)
            try await writeHandedOff([nowhere, routable], on: client)
            let received = Recorder<Int>()
            let consumer = EventConsumer(configuration: TestStack.amqp(), handler: ProbeHandler(queue: queue) { received.append($0.sequence) }, logger: logger)
            try await whileRunning([relay, consumer]) {
                relay.handOff([nowhere, routable])
                #expect(await eventually(timeout: .seconds(30)) { received.firstArrivals == [1] })
                let settled = try await eventually(timeout: .seconds(10)) {
                    let rows = try await outboxRows(client, schema)
                    return rows.count == 1 && rows[0].eventID == nowhere.messageId && rows[0].attempts == 0 && rows[0].nextAttemptAfterWrite > 5
                }
                let rows = try await outboxRows(client, schema)
                #expect(settled, "\(rows)")
            }
        }
    }

    @Test("a round cut short by shutdown is not a failure: nothing is logged, and its rows stay for the next start")
    func cancelledRoundIsQuiet() async throws {
        let warnings = InMemoryLogHandler()
        try await withRelay(batchSize: 16, logger: warnings.warningsLogger) { relay, client, schema, queue in
            try await write(0..<5, on: client, queue: queue)
            await withTaskGroup(of: Void.self) { group in
                group.cancelAll()
                group.addTask { await relay.drain() }  // created cancelled: as at the end of a shutdown's grace
            }
            #expect(warnings.messages == [])
            #expect(try await outboxRows(client, schema).count == 5)
        }
    }

    // MARK: - Helpers

    /// A schema with the outbox, a probe queue, and a relay over them (not yet running) whose
    /// timer does not fire within a test.
    private func withRelay(
        batchSize: Int,
        logger: Logger = TestStack.logger,
        _ body: @Sendable (OutboxRelay, PostgresClient, SchemaName, String) async throws -> Void
    ) async throws {
        let configuration = TestStack.amqp()
        let schema = TestStack.uniqueSchema("relay")
        let queue = TestStack.uniqueName("relay")
        try await EventBusAdmin.declare(probeTopology(queue: queue), configuration: configuration)
        try await TestStack.withDatabase(schema: schema) { client in
            try await MigrationRunner(schema: schema, migrations: try Outbox.migrations()).run(on: client, logger: logger)
            let publisher = EventPublisher(configuration: configuration, logger: logger)
            let relay = OutboxRelay(
                client: client, schema: schema, publisher: publisher, logger: logger, batchSize: batchSize, pollInterval: .seconds(3600))
            try await body(relay, client, schema, queue)
        }
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    /// Every probe of `sequences` arrived, in order, and the outbox is empty (what was published
    /// was deleted). At least once is the relay's promise (a confirm that never came is published
    /// again), so order is read from each event's first arrival.
    private func expectPublished(
        _ sequences: Range<Int>, received: Recorder<Int>, client: PostgresClient, schema: SchemaName,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        #expect(await eventually(timeout: .seconds(30)) { received.firstArrivals.count >= sequences.count }, sourceLocation: sourceLocation)
        #expect(received.firstArrivals == Array(sequences), "published out of order, or not at all", sourceLocation: sourceLocation)
        let emptied = try await eventually(timeout: .seconds(10)) { try await outboxRows(client, schema).isEmpty }
        #expect(emptied, "published rows left in the outbox", sourceLocation: sourceLocation)
    }

    /// A probe no queue is bound for.
    private func unroutableProbe(_ sequence: Int, queue: String) throws -> OutgoingMessage {
        var message = try probeMessage(sequence, queue: queue)
        message.routingKey = "test.probe.nowhere.\(queue)"
        return message
    }

    /// Probes `sequences` written handed off, in one transaction (as a writer does before it hands
    /// them to the relay); returns them.
    private func writeHandedOff(_ sequences: Range<Int>, on client: PostgresClient, queue: String) async throws -> [OutgoingMessage] {
        let messages = try sequences.map { try probeMessage($0, queue: queue) }
        try await writeHandedOff(messages, on: client)
        return messages
    }

    private func writeHandedOff(_ messages: [OutgoingMessage], on client: PostgresClient) async throws {
        var bindings = PostgresBindings(capacity: 5)
        Outbox.bind(messages, to: &bindings)
        let insertion = PostgresQuery(unsafeSQL: Outbox.insertion(firstParameter: 1, handedOff: true), binds: bindings)
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query(insertion, logger: logger)
        }
    }

    /// Probes `sequences`, in one transaction.
    private func write(_ sequences: Range<Int>, on client: PostgresClient, queue: String) async throws {
        let messages = try sequences.map { try probeMessage($0, queue: queue) }
        try await client.withTransaction(logger: logger) { connection in
            try await Outbox().enqueue(messages, on: connection, logger: logger)
        }
    }
}
