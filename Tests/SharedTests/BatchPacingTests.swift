import BlockingExecutor
import EventBus
import NIOPosix
import ServiceConfig
import StackTesting
import Testing

/// A consumer's batches start at least `AMQP_BATCH_INTERVAL_MS` apart, and so does a batch queue's
/// first batch after its queue ran empty; what arrives meanwhile joins the next batch, in order.
@Suite("Batch pacing")
struct BatchPacingTests {
    @Test(
        "a batch queue whose handler returns at once starts its batches at least the interval apart; what is queued meanwhile goes in the next, in order (sleeping on Dispatch's timers, and on an event loop's as in a service)",
        arguments: [false, true]
    )
    func batchQueueIsPaced(onLoop: Bool) async throws {
        let executor = onLoop ? EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.any()) : nil
        let all = try await LoopTimer.withPreference(executor) {
            try await batchesOfSteadyArrivals(interval: .milliseconds(100), handling: .zero)
        }
        for (earlier, later) in zip(all, all.dropFirst()) {
            #expect(later.started - earlier.started >= .milliseconds(95), "batches \(earlier.items) and \(later.items)")
        }
    }

    @Test(
        "a batch queue whose handler takes a while hands over what arrived meanwhile as soon as it returns: under steady load the round trip spaces the batches, not the interval"
    )
    func batchQueueFollowsItsHandlerUnderSteadyLoad() async throws {
        // A publish waiting for its confirm, while items keep arriving faster than it returns.
        let all = try await batchesOfSteadyArrivals(interval: .milliseconds(200), handling: .milliseconds(20))
        // Paced at 200 ms, a quarter of a second of arrivals would make at most two batches.
        let quick = zip(all, all.dropFirst()).filter { $1.started - $0.started < .milliseconds(200) }
        #expect(quick.count >= 3, "the batches waited for the interval: \(all.map(\.items.count))")
    }

    /// Runs a batch queue over 50 items queued 5 ms apart (about a quarter of a second), its
    /// handler taking `handling` for each batch; returns the batches, each item once and in order.
    private func batchesOfSteadyArrivals(
        interval: Duration, handling: Duration
    ) async throws -> [(started: ContinuousClock.Instant, items: [Int])] {
        let queue = BatchQueue<Int>(capacity: 1_000)
        let batches = Recorder<(started: ContinuousClock.Instant, items: [Int])>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await queue.run(window: .zero, interval: interval, maxBatch: 100) { batch in
                    batches.append((.now, batch))
                    if handling > .zero { try? await Task.sleep(for: handling) }
                }
            }
            for item in 0..<50 {
                #expect(queue.append(item))
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await eventually { batches.all.flatMap(\.items).count == 50 })
            group.cancelAll()
        }
        let all = batches.all
        #expect(all.flatMap(\.items) == Array(0..<50), "each item once, in order")
        #expect(all.count < 50, "items queued meanwhile were not batched: \(all.map(\.items.count))")
        return all
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

    @Test("AMQP_BATCH_INTERVAL_MS: 10 ms unless set, 0 for unpaced (its range: ConfigurationTests)")
    func intervalFromTheEnvironment() throws {
        #expect(try AMQPConfiguration(environment: EnvironmentReader([:])).batchInterval == .milliseconds(10))
        #expect(try AMQPConfiguration(environment: EnvironmentReader(["AMQP_BATCH_INTERVAL_MS": "0"])).batchInterval == .zero)
        #expect(try AMQPConfiguration(environment: EnvironmentReader(["AMQP_BATCH_INTERVAL_MS": "20"])).batchInterval == .milliseconds(20))
    }
}
