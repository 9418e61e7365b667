import EventContracts
import Logging
import Metrics
import ServiceLifecycle

/// Consumes one queue with manual acks and a prefetch window, as a lifecycle `Service`.
///
/// Deliveries are handed to the handler in batches (whatever has arrived, up to `batchSize`), so a
/// handler can commit many in one transaction; each delivery is acked, requeued or dead-lettered
/// only after the handler returns. The consumer reconnects and re-declares its topology by itself
/// after the broker restarts; unacknowledged deliveries are redelivered by the broker.
public final class EventConsumer: Service {
    public typealias BatchHandler = @Sendable ([Delivery]) async -> [DeliveryOutcome]

    private let configuration: AMQPConfiguration
    private let topology: Topology
    private let queue: String
    private let prefetch: Int
    private let batchSize: Int
    private let logger: Logger
    private let handler: BatchHandler
    private let onConsuming: (@Sendable () -> Void)?
    private let consumed: Counter
    private let retried: Counter
    private let deadLettered: Counter
    private let reconnects: Counter

    public init(
        configuration: AMQPConfiguration,
        topology: Topology,
        queue: String,
        prefetch: Int = 128,
        batchSize: Int = 64,
        logger: Logger,
        onConsuming: (@Sendable () -> Void)? = nil,
        handler: @escaping BatchHandler
    ) {
        self.onConsuming = onConsuming
        self.configuration = configuration
        self.topology = topology
        self.queue = queue
        self.prefetch = max(1, prefetch)
        self.batchSize = max(1, min(batchSize, prefetch))
        self.logger = logger
        self.handler = handler
        self.consumed = Counter(label: "swiftchat_bus_consumed_total", dimensions: [("queue", queue), ("outcome", "ack")])
        self.retried = Counter(label: "swiftchat_bus_consumed_total", dimensions: [("queue", queue), ("outcome", "retry")])
        self.deadLettered = Counter(label: "swiftchat_bus_consumed_total", dimensions: [("queue", queue), ("outcome", "dead_letter")])
        self.reconnects = Counter(label: "swiftchat_bus_reconnects_total", dimensions: [("role", "consumer"), ("queue", queue)])
    }

    /// One delivery at a time: a thrown `EventBusError.poisonMessage` (or a payload that does not
    /// decode) dead-letters the delivery at once; any other error requeues it for another try.
    public convenience init(
        configuration: AMQPConfiguration,
        topology: Topology,
        queue: String,
        prefetch: Int = 32,
        logger: Logger,
        onConsuming: (@Sendable () -> Void)? = nil,
        handle: @escaping @Sendable (Delivery) async throws -> Void
    ) {
        self.init(
            configuration: configuration, topology: topology, queue: queue, prefetch: prefetch, batchSize: 1, logger: logger,
            onConsuming: onConsuming
        ) { deliveries in
            var outcomes: [DeliveryOutcome] = []
            for delivery in deliveries {
                do {
                    try await handle(delivery)
                    outcomes.append(.ack)
                } catch let error as EventBusError where error.code == .poisonMessage {
                    logger.error("dead-lettering a poison message", metadata: ["queue": "\(queue)", "error": "\(error)"])
                    outcomes.append(.deadLetter)
                } catch is DecodingError {
                    logger.error("dead-lettering an undecodable message", metadata: ["queue": "\(queue)"])
                    outcomes.append(.deadLetter)
                } catch {
                    logger.warning("handler failed, requeueing", metadata: ["queue": "\(queue)", "error": "\(String(reflecting: error))"])
                    outcomes.append(.retry)
                }
            }
            return outcomes
        }
    }

    public func run() async throws {
        var backoff = Backoff(maximum: .seconds(3))
        var connectedBefore = false
        // Stops between batches on graceful shutdown, so in-flight work is finished and acked.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let connection = AMQPConnection(configuration: configuration)
            do {
                try await connection.open()
                try await connection.declare(topology)
                try await connection.startConsuming(queue: queue, prefetch: prefetch)
                if connectedBefore { reconnects.increment() }
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
            try? await Task.sleep(for: backoff.next())
        }
    }

    private func consume(on connection: AMQPConnection) async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let deliveries = try await connection.nextDeliveries(limit: batchSize, timeout: .milliseconds(200))
            guard !deliveries.isEmpty else { continue }
            let outcomes = await handler(deliveries)
            // Cancelled (not a graceful shutdown): leave them unacknowledged, as a crash would;
            // the broker redelivers them when the connection closes.
            if Task.isCancelled { return }
            for (index, delivery) in deliveries.enumerated() {
                switch index < outcomes.count ? outcomes[index] : .retry {
                case .ack:
                    try await connection.ack(delivery.deliveryTag)
                    consumed.increment()
                case .retry:
                    try await connection.nack(delivery.deliveryTag, requeue: true)
                    retried.increment()
                case .deadLetter:
                    try await connection.nack(delivery.deliveryTag, requeue: false)
                    deadLettered.increment()
                }
            }
        }
    }
}

/// Small administrative operations (tests, tooling) on a short-lived connection.
public enum EventBusAdmin {
    /// Declares a topology once.
    public static func declare(_ topology: Topology, configuration: AMQPConfiguration) async throws {
        try await withConnection(configuration) { connection in try await connection.declare(topology) }
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
