import EventBus
import EventContracts
import Foundation
import InMemoryLogging
import Logging
import PostgresNIO
import PostgresSupport
import ServiceLifecycle
import StackTesting
import Synchronization

/// An event type only tests publish, so test queues receive nothing else.
struct ProbeEvent: EventPayload, Equatable {
    static let eventType = "test.probe"
    static let exchange = EventExchange.userEvents
    var sequence: Int
}

/// A handler for probe events on one queue, doing what the test says with each batch.
struct ProbeHandler: EventHandler {
    enum Event: EventSet {
        case probe(ProbeEvent)
        static let cases = [EventCase(ProbeEvent.self, Event.probe)]
    }

    let subscription: Subscription
    let body: @Sendable ([IncomingEvent<Event>]) async throws -> [EventOutcome]

    /// Reads `queue` (declared by the test with `probeTopology`), a batch at a time.
    init(
        queue: String, kind: Subscription.Kind = .shared(), batchSize: Int = 64, maxEvents: Int = 1024,
        body: @escaping @Sendable ([IncomingEvent<Event>]) async throws -> [EventOutcome]
    ) {
        self.subscription = Subscription(queue: queue, kind: kind, prefetch: 128, batchSize: batchSize, maxEvents: maxEvents)
        self.body = body
    }

    /// One event at a time.
    init(queue: String, kind: Subscription.Kind = .shared(), each: @escaping @Sendable (IncomingEvent<Event>) async throws -> Void) {
        self.init(queue: queue, kind: kind, batchSize: 1) { batch in
            for item in batch { try await each(item) }
            return EventOutcome.done(batch.count)
        }
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] { try await body(batch) }
}

extension IncomingEvent where Event == ProbeHandler.Event {
    var sequence: Int {
        switch event {
        case .probe(let probe): probe.sequence
        }
    }
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

extension Recorder where Element: Hashable {
    /// Each element once, where it first came: the order of what is delivered at least once.
    var firstArrivals: [Element] {
        var seen = Set<Element>()
        return all.filter { seen.insert($0).inserted }
    }
}

/// Runs consumers (or any services) while `body` runs, then cancels them.
func whileRunning<Result: Sendable>(
    _ services: [any Service],
    _ body: @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for service in services {
            group.addTask { try await service.run() }
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

/// Several probes in one batch envelope, routed only to `queue`'s binding.
func probeBatch(_ sequences: [Int], queue: String) throws -> OutgoingMessage {
    var message = try OutgoingMessage(EventBatchEnvelope(producer: "test", payloads: sequences.map(ProbeEvent.init)))
    message.routingKey = ProbeEvent.eventType + "." + queue
    return message
}

/// A row still in a schema's outbox (the relay deletes what it published).
struct WaitingOutboxRow {
    var eventID: String
    var attempts: Int
    /// Seconds from its write to its next attempt: about 0 (a handed-off row: its hold) until an
    /// attempt fails, then the relay's delay for the retry on top of when that attempt was.
    var nextAttemptAfterWrite: Double
}

/// The rows still in `schema`'s outbox, in order.
func outboxRows(_ client: PostgresClient, _ schema: SchemaName) async throws -> [WaitingOutboxRow] {
    var rows: [WaitingOutboxRow] = []
    for try await (eventID, attempts, nextAttempt) in try await client.query(
        """
        SELECT event_id, attempts, EXTRACT(EPOCH FROM next_attempt_at - created_at)::float8
        FROM \(unescaped: schema.rawValue).outbox ORDER BY position
        """
    ).decode((String, Int, Double).self) {
        rows.append(WaitingOutboxRow(eventID: eventID, attempts: attempts, nextAttemptAfterWrite: nextAttempt))
    }
    return rows
}

extension InMemoryLogHandler {
    /// A logger whose warnings (and worse) this handler keeps.
    var warningsLogger: Logger {
        var logger = Logger(label: "recorded") { _ in self }
        logger.logLevel = .warning
        return logger
    }

    /// The messages kept so far.
    var messages: [String] { entries.map(\.message.description) }
}
