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
        let received = Recorder<EventEnvelope<ProbeEvent>>()
        let consumer = EventConsumer(configuration: configuration, topology: topology, queue: queue, logger: logger) { delivery in
            if let envelope = try delivery.event().decode(ProbeEvent.self) { received.append(envelope) }
        }
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        let sent = try probeMessage(42, queue: queue)
        try await whileRunning([consumer]) {
            try await publisher.publish(sent)
            #expect(await eventually { received.count == 1 })
        }
        let envelope = try #require(received.all.first)
        #expect(envelope.id == sent.messageId)
        #expect(envelope.type == ProbeEvent.eventType)
        #expect(envelope.version == 1)
        #expect(envelope.producer == "test")
        #expect(envelope.payload == ProbeEvent(sequence: 42))
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
        let firstSaw = Recorder<Delivery>()
        let dying = EventConsumer(configuration: configuration, topology: topology, queue: queue, logger: logger) { delivery in
            firstSaw.append(delivery)
            try await Task.sleep(for: .seconds(60))
        }
        try await whileRunning([dying]) {
            #expect(await eventually { firstSaw.count == 1 })
        }

        let secondSaw = Recorder<Delivery>()
        let survivor = EventConsumer(configuration: configuration, topology: topology, queue: queue, logger: logger) { delivery in
            secondSaw.append(delivery)
        }
        try await whileRunning([survivor]) {
            #expect(await eventually { secondSaw.count == 1 })
        }
        let redelivered = try #require(secondSaw.all.first)
        #expect(redelivered.messageId == message.messageId)
        #expect(redelivered.redelivered)
        #expect(firstSaw.all.first?.redelivered == false)
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("a message that always fails lands in the dead-letter queue after the delivery limit")
    func poisonMessageIsDeadLettered() async throws {
        let queue = TestStack.uniqueName("poison")
        let limit = 3
        let topology = probeTopology(queue: queue, deliveryLimit: limit)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        struct AlwaysFails: Error {}
        let attempts = Recorder<Delivery>()
        let failing = EventConsumer(configuration: configuration, topology: topology, queue: queue, logger: logger) { delivery in
            attempts.append(delivery)
            throw AlwaysFails()
        }
        let dead = Recorder<Delivery>()
        let deadLetterReader = EventConsumer(
            configuration: configuration, topology: Topology(queues: []), queue: "\(queue).dead", logger: logger
        ) { delivery in dead.append(delivery) }
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        let message = try probeMessage(13, queue: queue)
        try await whileRunning([failing, deadLetterReader]) {
            try await publisher.publish(message)
            #expect(await eventually(timeout: .seconds(20)) { dead.count == 1 })
        }
        #expect(dead.all.first?.messageId == message.messageId)
        // The first delivery plus `limit` redeliveries, then the broker gives up on it.
        #expect(attempts.count == limit + 1)
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }

    @Test("an undecodable message is dead-lettered at once, without retries")
    func malformedMessageIsDeadLetteredAtOnce() async throws {
        let queue = TestStack.uniqueName("malformed")
        let topology = probeTopology(queue: queue)
        try await EventBusAdmin.declare(topology, configuration: configuration)
        let attempts = Recorder<Delivery>()
        let consumer = EventConsumer(configuration: configuration, topology: topology, queue: queue, logger: logger) { delivery in
            attempts.append(delivery)
            _ = try delivery.event()
        }
        let dead = Recorder<Delivery>()
        let deadLetterReader = EventConsumer(
            configuration: configuration, topology: Topology(queues: []), queue: "\(queue).dead", logger: logger
        ) { delivery in dead.append(delivery) }
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        var malformed = try probeMessage(0, queue: queue)
        malformed.body = Data("{not json".utf8)
        let message = malformed
        try await whileRunning([consumer, deadLetterReader]) {
            try await publisher.publish(message)
            #expect(await eventually { dead.count == 1 })
        }
        #expect(attempts.count == 1)
        await publisher.shutdown()
        try await EventBusAdmin.deleteQueues([queue, "\(queue).dead"], configuration: configuration)
    }
}
