import EventBus
import ServiceConfig
import StackTesting
import Testing

/// A stage's batches start at least `AMQP_BATCH_INTERVAL_MS` apart, and what arrives meanwhile
/// joins the next batch, in order.
@Suite("Batch pacing")
struct BatchPacingTests {
    @Test("a batch queue starts its batches at least the interval apart; what is queued meanwhile goes in the next, in order")
    func batchQueueIsPaced() async throws {
        let queue = BatchQueue<Int>(capacity: 1_000)
        let batches = Recorder<(started: ContinuousClock.Instant, items: [Int])>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await queue.run(window: .zero, interval: .milliseconds(100), maxBatch: 100) { batch in batches.append((.now, batch)) }
            }
            // Arrivals spread over about a quarter of a second.
            for item in 0..<50 {
                #expect(queue.append(item))
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await eventually { batches.all.flatMap(\.items).count == 50 })
            group.cancelAll()
        }
        let all = batches.all
        #expect(all.flatMap(\.items) == Array(0..<50), "each item once, in order")
        #expect(all.count < 50, "items queued while the loop waited its turn were not batched: \(all.map(\.items.count))")
        for (earlier, later) in zip(all, all.dropFirst()) {
            #expect(later.started - earlier.started >= .milliseconds(95), "batches \(earlier.items) and \(later.items)")
        }
    }

    @Test("a consumer starts its batches at least batchInterval apart; deliveries that arrive meanwhile go in the next, in order")
    func consumerIsPaced() async throws {
        let configuration = TestStack.amqp(batchInterval: .milliseconds(200))
        let queue = TestStack.uniqueName("paced")
        try await EventBusAdmin.declare(probeTopology(queue: queue), configuration: configuration)
        let batches = Recorder<(started: ContinuousClock.Instant, sequences: [Int])>()
        let handler = ProbeHandler(queue: queue) { batch in
            batches.append((.now, batch.map(\.sequence)))
            return EventOutcome.done(batch.count)
        }
        let publisher = EventPublisher(configuration: configuration, logger: TestStack.logger)
        try await whileRunning([EventConsumer(configuration: configuration, handler: handler, logger: TestStack.logger)]) {
            // One broker message each, each confirmed before the next is published.
            for sequence in 0..<30 { try await publisher.publish(try probeMessage(sequence, queue: queue)) }
            #expect(await eventually { batches.all.flatMap(\.sequences).count >= 30 })
        }
        let all = batches.all
        #expect(all.flatMap(\.sequences) == Array(0..<30), "each event once, in order")
        #expect(all.count < 30, "deliveries that arrived while the consumer waited its turn were not batched: \(all.map(\.sequences.count))")
        for (earlier, later) in zip(all, all.dropFirst()) {
            // The interval counts from when a batch's deliveries arrived, a moment before its handler ran.
            #expect(later.started - earlier.started >= .milliseconds(190), "batches \(earlier.sequences) and \(later.sequences)")
        }
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("AMQP_BATCH_INTERVAL_MS: 10 ms unless set, 0 for unpaced; a value outside 0–1000 or not a number stops the service at start")
    func intervalFromTheEnvironment() throws {
        #expect(try AMQPConfiguration(environment: EnvironmentReader([:])).batchInterval == .milliseconds(10))
        #expect(try AMQPConfiguration(environment: EnvironmentReader(["AMQP_BATCH_INTERVAL_MS": "0"])).batchInterval == .zero)
        #expect(try AMQPConfiguration(environment: EnvironmentReader(["AMQP_BATCH_INTERVAL_MS": "20"])).batchInterval == .milliseconds(20))
        for bad in ["-1", "1001", "5ms"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try AMQPConfiguration(environment: EnvironmentReader(["AMQP_BATCH_INTERVAL_MS": bad])) }
        }
    }
}
