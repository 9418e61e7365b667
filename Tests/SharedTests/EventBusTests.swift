import EventBus
import EventContracts
import Foundation
import StackTesting
import Testing

@Suite("Event bus on the real RabbitMQ")
struct EventBusTests {
    let configuration = TestStack.amqp()
    let logger = TestStack.logger

    @Test("publish → consume round trip, with the envelope intact")
    func roundTrip() async throws {
        let queue = TestStack.uniqueName("roundtrip")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        let received = Recorder<IncomingEvent<ProbeHandler.Event>>()
        let consumer = EventConsumer(configuration: configuration, handler: ProbeHandler(queue: queue) { received.append($0) }, logger: logger)
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        let sent = try probeMessage(42, queue: queue)
        try await whileRunning([consumer]) {
            try await publisher.publish(sent)
            #expect(await eventually { received.count == 1 })
        }
        let event = try #require(received.all.first)
        #expect(event.id == sent.messageId)
        #expect(event.producer == "test")
        #expect(event.sequence == 42)
        let header = try EventCoding.decoder.decode(EventHeader.self, from: sent.body)
        #expect(header.type == ProbeEvent.eventType)
        #expect(header.version == 1)
        #expect(header.count == nil)
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("mandatory: a message no queue is bound for is reported unroutable, not dropped silently")
    func unroutableIsAnError() async throws {
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        let message = try probeMessage(1, queue: TestStack.uniqueName("nobody"))
        let outcomes = try await publisher.publish([message])
        #expect(outcomes == [.unroutable])
        await #expect(throws: EventBusError.self) { try await publisher.publish(message) }
        await publisher.shutdown()
    }

    @Test("a consumer that dies before acking: the message is redelivered to the next one")
    func redeliveryAfterConsumerDeath() async throws {
        let queue = TestStack.uniqueName("redeliver")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        let message = try probeMessage(7, queue: queue)
        try await publisher.publish(message)

        // The first consumer takes the delivery and never finishes with it; then it is cancelled,
        // which closes its connection without an ack, as a crash would.
        let firstSaw = Recorder<String>()
        let dying = EventConsumer(
            configuration: configuration,
            handler: ProbeHandler(queue: queue) { event in
                firstSaw.append(event.id)
                try await Task.sleep(for: .seconds(60))
            }, logger: logger)
        try await whileRunning([dying]) {
            #expect(await eventually { firstSaw.count == 1 })
        }

        let secondSaw = Recorder<String>()
        let survivor = EventConsumer(configuration: configuration, handler: ProbeHandler(queue: queue) { secondSaw.append($0.id) }, logger: logger)
        try await whileRunning([survivor]) {
            #expect(await eventually { secondSaw.count == 1 })
        }
        #expect(secondSaw.all == [message.messageId])
        #expect(firstSaw.all == [message.messageId])
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("a batch with one failing item: the item alone is dead-lettered, with its sender told; every other item goes through once")
    func failingItemIsIsolated() async throws {
        let queue = TestStack.uniqueName("isolate")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        struct BadItem: Error {}
        let applied = Recorder<Int>()
        let isolated = Recorder<Int>()
        let handler = IsolatingProbeHandler(queue: queue, poison: 13, applied: applied, isolated: isolated)
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        // 40 events in four batch envelopes, the poison in the second one.
        let messages = try stride(from: 0, to: 40, by: 10).map { try probeBatch(Array($0..<($0 + 10)), queue: queue) }
        _ = try await publisher.publish(messages)
        try await whileRunning([EventConsumer(configuration: configuration, handler: handler, logger: logger)]) {
            #expect(await eventually(timeout: .seconds(20)) { applied.count == 39 && isolated.count == 1 })
        }
        #expect(Set(applied.all) == Set(0..<40).subtracting([13]))
        #expect(applied.count == 39, "an item was applied twice")
        #expect(isolated.all == [13])
        // A copy of the second envelope went to the dead-letter queue, naming the failed item.
        let dead = try await deadLetters(of: queue, count: 1)
        #expect(dead.map(\.messageId) == ["\(messages[1].messageId)#failed=3"])
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("a batch that fails for an outage is retried whole, and nothing is dead-lettered")
    func outageRetriesWholeBatch() async throws {
        let queue = TestStack.uniqueName("outage")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        let attempts = Recorder<Int>()
        let applied = Recorder<Int>()
        let handler = ProbeHandler(queue: queue) { batch in
            attempts.append(batch.count)
            // The first three attempts find "the database" away.
            if attempts.count <= 3 { throw EventBusError(.connectionLost, "a dependency is away") }
            for item in batch { applied.append(item.sequence) }
            return EventOutcome.done(batch.count)
        }
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        _ = try await publisher.publish([try probeBatch(Array(0..<20), queue: queue)])
        try await whileRunning([EventConsumer(configuration: configuration, handler: handler, logger: logger)]) {
            #expect(await eventually(timeout: .seconds(20)) { applied.count == 20 })
        }
        #expect(attempts.all.prefix(4) == [20, 20, 20, 20], "the batch was split for an outage")
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("a batch held past two heartbeat intervals keeps its connection: handled once, never redelivered; big takes are handled in parts")
    func longHoldKeepsTheConnection() async throws {
        var configuration = configuration
        configuration.heartbeatSeconds = 1
        let queue = TestStack.uniqueName("hold")
        try await EventBusAdmin.declare(probeTopology(queue: queue), configuration: configuration)
        let attempts = Recorder<Int>()
        let applied = Recorder<Int>()
        // A handler that takes 4 s (four heartbeat intervals) over its first part, and never
        // gets more than 8 events at once.
        let handler = ProbeHandler(queue: queue, maxEvents: 8) { batch in
            attempts.append(batch.count)
            if attempts.count == 1 { try await Task.sleep(for: .seconds(4)) }
            for item in batch { applied.append(item.sequence) }
            return EventOutcome.done(batch.count)
        }
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        _ = try await publisher.publish([try probeBatch(Array(0..<20), queue: queue)])
        try await whileRunning([EventConsumer(configuration: configuration, handler: handler, logger: logger)]) {
            #expect(await eventually(timeout: .seconds(20)) { applied.count >= 20 })
            // Long enough for a dropped connection's redelivery to have shown.
            try await Task.sleep(for: .seconds(2))
        }
        #expect(attempts.all == [8, 8, 4], "the take was redelivered or not split into parts: \(attempts.all)")
        #expect(applied.all.sorted() == Array(0..<20))
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("an undecodable message is dead-lettered at once, without retries")
    func malformedMessageIsDeadLetteredAtOnce() async throws {
        let queue = TestStack.uniqueName("malformed")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        let attempts = Recorder<Int>()
        let consumer = EventConsumer(configuration: configuration, handler: ProbeHandler(queue: queue) { attempts.append($0.sequence) }, logger: logger)
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        var malformed = try probeMessage(0, queue: queue)
        malformed.body = Data(
            #"{"id":"x","type":"test.probe","version":1,"occurredAt":"2026-01-01T00:00:00.000Z","producer":"test","payload":{"sequence":"not a number"}}"#.utf8)
        let message = malformed
        try await whileRunning([consumer]) {
            try await publisher.publish(message)
            let dead = try await deadLetters(of: queue, count: 1)
            #expect(dead.map(\.messageId) == [message.messageId])
        }
        #expect(attempts.count == 0)
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }
}

/// Applies every probe but `poison`, which fails whenever it is in the batch (a bad item).
struct IsolatingProbeHandler: EventHandler {
    typealias Event = ProbeHandler.Event
    struct BadItem: Error {}

    let subscription: Subscription
    let poison: Int
    let applied: Recorder<Int>
    let isolated: Recorder<Int>

    init(queue: String, poison: Int, applied: Recorder<Int>, isolated: Recorder<Int>) {
        self.subscription = Subscription(queue: queue, kind: .shared(), prefetch: 128, batchSize: 64)
        self.poison = poison
        self.applied = applied
        self.isolated = isolated
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        // All or nothing, as one transaction would be.
        guard !batch.contains(where: { $0.sequence == poison }) else { throw BadItem() }
        for item in batch { applied.append(item.sequence) }
        return EventOutcome.done(batch.count)
    }

    func isolated(_ item: IncomingEvent<Event>, error: any Error) async {
        isolated.append(item.sequence)
    }
}

/// The messages in `queue`'s dead-letter queue, once `count` have arrived (or 20 s passed).
func deadLetters(of queue: String, count: Int) async throws -> [Delivery] {
    var taken: [Delivery] = []
    let deadline = ContinuousClock.now + .seconds(20)
    while taken.count < count, ContinuousClock.now < deadline {
        taken += try await EventBusAdmin.take(from: "\(queue).dead", limit: count - taken.count, wait: .seconds(1), configuration: TestStack.amqp())
    }
    return taken
}
