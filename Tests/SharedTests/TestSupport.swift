import EventBus
import EventContracts
import Foundation
import StackTesting
import Synchronization

/// An event type only tests publish, so test queues receive nothing else.
struct ProbeEvent: EventPayload, Equatable {
    static let eventType = "test.probe"
    static let exchange = EventExchange.userEvents
    var sequence: Int
}

/// Collects what a consumer received, for assertions from the test's task.
final class Recorder<Element: Sendable>: Sendable {
    private let storage = Mutex<[Element]>([])

    func append(_ element: Element) {
        storage.withLock { $0.append(element) }
    }

    var all: [Element] { storage.withLock { $0 } }
    var count: Int { storage.withLock { $0.count } }
}

/// Runs a consumer (or any service) while `body` runs, then cancels it.
func whileRunning<Result: Sendable>(
    _ consumers: [EventConsumer],
    _ body: @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for consumer in consumers {
            group.addTask { try await consumer.run() }
        }
        defer { group.cancelAll() }
        return try await body()
    }
}

/// A consumer topology on the test routing key with a unique queue.
func probeTopology(queue: String, deliveryLimit: Int = Topology.defaultDeliveryLimit) -> Topology {
    Topology.consumer(queue: queue, bindings: [QueueBinding(.userEvents, ProbeEvent.eventType + "." + queue)], deliveryLimit: deliveryLimit)
}

/// A probe message routed only to `queue`'s binding.
func probeMessage(_ sequence: Int, queue: String) throws -> OutgoingMessage {
    var message = try OutgoingMessage(EventEnvelope(producer: "test", payload: ProbeEvent(sequence: sequence)))
    message.routingKey = ProbeEvent.eventType + "." + queue
    return message
}
