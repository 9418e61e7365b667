import BlockingExecutor
import EventContracts
import Foundation
import Logging
import Metrics
import ServiceConfig
import ServiceLifecycle

/// Runs one `EventHandler` on its queue, as a lifecycle `Service`: manual acks, a prefetch
/// window, batches of whatever has arrived, started at least `batchInterval` apart (`BatchPacing`).
/// It reconnects and re-declares its topology by itself after the broker restarts; unacknowledged
/// deliveries are redelivered by the broker.
///
/// Failures (see `EventHandler`): a batch that fails for an outage (`isTransient`) is retried
/// whole with backoff, holding its deliveries, so an outage dead-letters nothing; any other failure
/// splits the batch in halves until the failing item stands alone, and only that item is
/// dead-lettered. A delivery whose items all failed is rejected to the dead-letter exchange; one
/// with good and bad items is acked and a copy naming the bad items goes to the dead-letter queue.
public final class EventConsumer<Handler: EventHandler>: Service {
    private let configuration: AMQPConfiguration
    private let handler: Handler
    private let decoder = EventDecoder<Handler.Event>()
    private let topology: Topology
    private let logger: Logger
    private let isTransient: @Sendable (any Error) -> Bool
    private let handlerDeadline: Duration
    private let onConsuming: (@Sendable () -> Void)?
    private let deadLetters: EventPublisher
    private let metrics: ConsumerMetrics

    public init(
        configuration: AMQPConfiguration,
        handler: Handler,
        logger: Logger,
        isTransient: @escaping @Sendable (any Error) -> Bool = EventBusFailure.isTransient,
        handlerDeadline: Duration = .seconds(30),
        onConsuming: (@Sendable () -> Void)? = nil
    ) {
        self.configuration = configuration
        self.handler = handler
        self.topology = handler.subscription.topology(for: EventDecoder<Handler.Event>().types)
        self.logger = logger
        self.isTransient = isTransient
        self.handlerDeadline = handlerDeadline
        self.onConsuming = onConsuming
        self.deadLetters = EventPublisher(configuration: configuration, logger: logger)
        self.metrics = ConsumerMetrics(queue: handler.subscription.queue)
    }

    private var queue: String { handler.subscription.queue }

    public func run() async throws {
        var backoff = Backoff(maximum: .seconds(3))
        var connectedBefore = false
        // Stops between batches on graceful shutdown, so in-flight work is finished and acked.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let connection = AMQPConnection(configuration: configuration)
            do {
                try await connection.open()
                try await connection.declare(topology)
                try await connection.startConsuming(queue: queue, prefetch: handler.subscription.prefetch)
                if connectedBefore { metrics.reconnects.increment() }
                connectedBefore = true
                backoff.reset()
                logger.info("consuming", metadata: ["queue": "\(queue)"])
                onConsuming?()
                try await consume(on: connection)
            } catch {
                logger.warning("consumer connection failed, reconnecting", metadata: ["queue": "\(queue)", "error": "\(error)"])
            }
            await connection.shutdown()
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            let pause = backoff.next()
            try? await cancelWhenGracefulShutdown { try await LoopTimer.sleep(for: pause) }
        }
        await deadLetters.shutdown()
    }

    private func consume(on connection: AMQPConnection) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if configuration.heartbeatSeconds > 0 {
                let interval = Duration.seconds(configuration.heartbeatSeconds) / 2
                group.addTask { await Self.sendHeartbeats(on: connection, every: interval) }
            }
            defer { group.cancelAll() }
            var pacing = BatchPacing(interval: configuration.batchInterval)
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                // What arrives meanwhile waits in the prefetch window and joins the next batch.
                await pacing.waitForTurn()
                let deliveries = try await connection.nextDeliveries(limit: handler.subscription.batchSize, timeout: .milliseconds(200))
                guard !deliveries.isEmpty else { continue }
                pacing.started()
                metrics.batchSize.record(deliveries.count)
                let verdicts = await handle(deliveries)
                // Cancelled, or shutting down while an outage holds the batch: leave the deliveries
                // unacknowledged, as a crash would; the broker redelivers them when the connection closes.
                guard let verdicts, !Task.isCancelled else { return }
                try await settle(deliveries, verdicts, on: connection)
            }
        }
    }

    /// A heartbeat every half interval for as long as the connection consumes: librabbitmq sends
    /// them only inside its own calls, and the broker would take a consumer that holds a batch past
    /// two intervals for dead and redeliver the batch (counting towards its delivery limit) while
    /// it is still being handled. One task per connection, not one per batch. While the consumer
    /// waits for deliveries, the beat waits its turn on the connection (at most the 200 ms wait).
    private static func sendHeartbeats(on connection: AMQPConnection, every interval: Duration) async {
        while (try? await LoopTimer.sleep(for: interval)) != nil {
            try? await connection.sendHeartbeat()
        }
    }

    // MARK: Handling a batch

    private enum Verdict {
        case ack
        case reject
        /// Some items failed: ack, and dead-letter a copy naming them.
        case partial(failed: [Int])
    }

    /// Decodes the deliveries and runs the handler; nil when the batch must stay unacknowledged.
    private func handle(_ deliveries: [Delivery]) async -> [Verdict]? {
        var verdicts = [Verdict](repeating: .ack, count: deliveries.count)
        var items: [IncomingEvent<Handler.Event>] = []
        var owners: [(delivery: Int, index: Int)] = []
        for (position, delivery) in deliveries.enumerated() {
            if delivery.redelivered { metrics.redelivered.increment() }
            do {
                // A type this handler does not take is acked and skipped.
                guard let events = try decoder.decode(type: delivery.type, body: delivery.body) else { continue }
                items += events
                owners += events.indices.map { (position, $0) }
            } catch {
                logger.error("dead-lettering an undecodable message", metadata: ["queue": "\(queue)", "error": "\(error)"])
                verdicts[position] = .reject
            }
        }
        guard !items.isEmpty else { return verdicts }
        let started = ContinuousClock.now
        var outcomes: [EventOutcome] = []
        let most = handler.subscription.maxEvents
        for start in stride(from: 0, to: items.count, by: most) {
            // Nil (shutting down in an outage): nothing is acked, and what earlier parts applied
            // is skipped when the deliveries come back (handlers are idempotent).
            guard let part = await process(items[start..<min(start + most, items.count)]) else { return nil }
            outcomes += part
        }
        let elapsed = ContinuousClock.now - started
        metrics.handlerTime.recordNanoseconds(elapsed.nanoseconds)
        var failed: [Int: [Int]] = [:]
        for (owner, outcome) in zip(owners, outcomes) {
            if case .deadLetter = outcome { failed[owner.delivery, default: []].append(owner.index) }
        }
        for (position, indices) in failed {
            let total = owners.lazy.filter { $0.delivery == position }.count
            verdicts[position] = indices.count == total ? .reject : .partial(failed: indices)
        }
        return verdicts
    }

    /// Runs `items` through the handler: whole while failures are outages, split when not.
    private func process(_ items: ArraySlice<IncomingEvent<Handler.Event>>) async -> [EventOutcome]? {
        var backoff = Backoff(maximum: .seconds(5))
        while true {
            do {
                let handler = handler
                let batch = Array(items)
                let outcomes = try await withDeadline(handlerDeadline, "handling a batch of \(queue)") { try await handler.handle(batch) }
                return outcomes.count == items.count ? outcomes : outcomes + EventOutcome.done(max(0, items.count - outcomes.count))
            } catch  where isTransient(error) {
                metrics.transientFailures.increment()
                logger.warning("a dependency is away; retrying the batch", metadata: ["queue": "\(queue)", "error": "\(String(reflecting: error))"])
                if Task.isCancelled || Task.isShuttingDownGracefully { return nil }
                try? await LoopTimer.sleep(for: backoff.next())
                if Task.isCancelled || Task.isShuttingDownGracefully { return nil }
            } catch {
                guard items.count > 1 else {
                    let item = items[items.startIndex]
                    logger.error(
                        "dead-lettering an event that fails on its own",
                        metadata: [
                            "queue": "\(queue)", "event": "\(item.id)", "error": "\(String(reflecting: error))",
                        ])
                    await handler.isolated(item, error: error)
                    return [.deadLetter(String(describing: error))]
                }
                metrics.splits.increment()
                let middle = items.startIndex + items.count / 2
                guard let first = await process(items[..<middle]), let second = await process(items[middle...]) else { return nil }
                return first + second
            }
        }
    }

    private func settle(_ deliveries: [Delivery], _ verdicts: [Verdict], on connection: AMQPConnection) async throws {
        if verdicts.allSatisfy({ if case .ack = $0 { true } else { false } }), let last = deliveries.last {
            try await connection.ack(last.deliveryTag, multiple: true)
            metrics.acked.increment(by: deliveries.count)
            return
        }
        for (delivery, verdict) in zip(deliveries, verdicts) {
            switch verdict {
            case .ack:
                try await connection.ack(delivery.deliveryTag)
                metrics.acked.increment()
            case .reject:
                try await connection.nack(delivery.deliveryTag, requeue: false)
                metrics.deadLettered.increment()
            case .partial(let failed):
                // No copy, no ack: the connection is dropped, the delivery comes back and its good
                // items are skipped as already processed (handlers are idempotent).
                try await deadLetterCopy(of: delivery, failed: failed)
                try await connection.ack(delivery.deliveryTag)
                metrics.deadLettered.increment()
            }
        }
    }

    /// A delivery with good and bad items: the good ones took effect, so it is acked; a copy goes
    /// to `<queue>.dead` with the bad items' indices in its message id, for whoever inspects it.
    private func deadLetterCopy(of delivery: Delivery, failed: [Int]) async throws {
        let copy = OutgoingMessage(
            exchange: EventExchange.deadLetters.rawValue, routingKey: "\(queue).dead",
            messageId: "\(delivery.messageId ?? "unknown")#failed=\(failed.map(String.init).joined(separator: ","))",
            type: delivery.type ?? "unknown", body: delivery.body
        )
        do { try await deadLetters.publish(copy) } catch {
            logger.error("could not dead-letter the failed items of a batch; taking it again", metadata: ["queue": "\(queue)", "error": "\(error)"])
            throw error
        }
    }
}

/// The default classification of failures: the broker being away is an outage, not bad input.
public enum EventBusFailure {
    public static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case is DeadlineExceeded, is CancellationError: return true
        case let error as EventBusError: return error.code != .poisonMessage && error.code != .protocolError
        default: return false
        }
    }
}

/// A consumer's counters: what it acked, dead-lettered, saw again, and how it batched.
private struct ConsumerMetrics {
    let acked: Counter
    let deadLettered: Counter
    let redelivered: Counter
    let reconnects: Counter
    let transientFailures: Counter
    let splits: Counter
    let batchSize: Recorder
    let handlerTime: Timer

    init(queue: String) {
        acked = Counter(label: "swiftchat_bus_consumed_total", dimensions: [("queue", queue), ("outcome", "ack")])
        deadLettered = Counter(label: "swiftchat_bus_consumed_total", dimensions: [("queue", queue), ("outcome", "dead_letter")])
        redelivered = Counter(label: "swiftchat_bus_redelivered_total", dimensions: [("queue", queue)])
        reconnects = Counter(label: "swiftchat_bus_reconnects_total", dimensions: [("role", "consumer"), ("queue", queue)])
        transientFailures = Counter(label: "swiftchat_bus_batch_retries_total", dimensions: [("queue", queue)])
        splits = Counter(label: "swiftchat_bus_batch_splits_total", dimensions: [("queue", queue)])
        batchSize = Recorder(label: "swiftchat_bus_batch_deliveries", dimensions: [("queue", queue)], aggregate: true)
        handlerTime = Timer(label: "swiftchat_bus_handler_seconds", dimensions: [("queue", queue)])
    }
}

/// Small administrative operations (tests, tooling) on a short-lived connection.
public enum EventBusAdmin {
    /// Declares a topology once.
    public static func declare(_ topology: Topology, configuration: AMQPConfiguration) async throws {
        try await withConnection(configuration) { connection in try await connection.declare(topology) }
    }

    /// Takes (and acknowledges) what waits in a queue, up to `limit` messages, waiting at most
    /// `wait` for the first: for reading a dead-letter queue, say.
    public static func take(from queue: String, limit: Int = 100, wait: Duration = .seconds(1), configuration: AMQPConfiguration) async throws -> [Delivery] {
        var taken: [Delivery] = []
        try await withConnection(configuration) { connection in
            try await connection.startConsuming(queue: queue, prefetch: limit)
            taken = try await connection.nextDeliveries(limit: limit, timeout: wait)
            if let last = taken.last { try await connection.ack(last.deliveryTag, multiple: true) }
        }
        return taken
    }

    /// How many consumers a queue has; 0 when it does not exist (yet).
    public static func consumerCount(of queue: String, configuration: AMQPConfiguration) async throws -> Int {
        var count = 0
        try await withConnection(configuration) { connection in count = (try? await connection.consumerCount(queue)) ?? 0 }
        return count
    }

    /// Deletes queues, ignoring ones that do not exist.
    public static func deleteQueues(_ names: [String], configuration: AMQPConfiguration) async throws {
        for name in names {
            // A missing queue closes the channel: a fresh connection per queue keeps that contained.
            try await withConnection(configuration) { connection in _ = try? await connection.deleteQueue(name) }
        }
    }

    private static func withConnection(
        _ configuration: AMQPConfiguration,
        _ body: (AMQPConnection) async throws -> Void
    ) async throws {
        let connection = AMQPConnection(configuration: configuration)
        do {
            try await connection.open()
            try await body(connection)
        } catch {
            await connection.shutdown()
            throw error
        }
        await connection.shutdown()
    }
}
