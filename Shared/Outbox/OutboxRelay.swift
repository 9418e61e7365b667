import EventBus
import Foundation
import Logging
import Metrics
import PostgresNIO
import PostgresSupport
import ServiceLifecycle

/// Publishes the outbox to RabbitMQ, as a lifecycle `Service`.
///
/// Rows are taken in order with `FOR UPDATE SKIP LOCKED` (so replicas share the work without
/// publishing the same row concurrently), published with confirms, and marked published in the
/// same transaction only after the broker confirmed them. A broker outage rolls the transaction
/// back and the rows wait; a crash after the confirm but before the commit republishes them, which
/// idempotent consumers absorb. Unroutable rows are retried with a growing delay.
public final class OutboxRelay: Service {
    private let client: PostgresClient
    private let schema: SchemaName
    private let publisher: EventPublisher
    private let logger: Logger
    private let batchSize: Int
    private let pollInterval: Duration
    private let retention: Duration
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let published = Counter(label: "swiftchat_outbox_published_total")
    private let deferred = Counter(label: "swiftchat_outbox_deferred_total")

    public init(
        client: PostgresClient,
        schema: SchemaName,
        publisher: EventPublisher,
        logger: Logger,
        batchSize: Int = 256,
        pollInterval: Duration = .seconds(1),
        retention: Duration = .seconds(86_400)
    ) {
        self.client = client
        self.schema = schema
        self.publisher = publisher
        self.logger = logger
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.retention = retention
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the relay to look at the outbox now (call after committing a transaction that wrote to
    /// it); without it, new rows wait at most `pollInterval`.
    public func notify() {
        wake.yield()
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { [wake, pollInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    wake.yield()
                }
            }
            var rounds = 0
            for await _ in wakeups.cancelOnGracefulShutdown() {
                await drain()
                rounds += 1
                if rounds % 600 == 0 { await prune() }
            }
            group.cancelAll()
        }
        // Last chance for what was committed just before shutdown.
        await drain()
        await publisher.shutdown()
    }

    /// Publishes until the outbox has nothing ready, or publishing fails.
    public func drain() async {
        while true {
            do {
                let relayed = try await relayBatch()
                if relayed < batchSize { return }
            } catch {
                logger.warning("outbox relay paused", metadata: ["schema": "\(schema)", "error": "\(String(reflecting: error))"])
                return
            }
        }
    }

    /// One batch in one transaction; returns how many rows it looked at.
    func relayBatch() async throws -> Int {
        let schema = schema.rawValue
        let batchSize = batchSize
        let publisher = publisher
        let logger = logger
        let (confirmed, failed) = try await client.transaction(logger: logger) { connection -> ([Int64], [Int64]) in
            var positions: [Int64] = []
            var messages: [OutgoingMessage] = []
            let rows = try await connection.query(
                """
                SELECT position, event_id, exchange, routing_key, event_type, body
                FROM \(unescaped: schema).outbox
                WHERE published_at IS NULL AND next_attempt_at <= now()
                ORDER BY position
                LIMIT \(batchSize)
                FOR UPDATE SKIP LOCKED
                """,
                logger: logger
            )
            for try await (position, eventID, exchange, routingKey, type, body) in rows.decode((Int64, String, String, String, String, ByteBuffer).self) {
                positions.append(position)
                messages.append(OutgoingMessage(exchange: exchange, routingKey: routingKey, messageId: eventID, type: type, body: Data(body.readableBytesView)))
            }
            guard !messages.isEmpty else { return ([], []) }
            let outcomes = try await publisher.publish(messages)
            var confirmed: [Int64] = []
            var failed: [Int64] = []
            for (position, outcome) in zip(positions, outcomes) {
                if outcome == .confirmed { confirmed.append(position) } else { failed.append(position) }
            }
            if !confirmed.isEmpty {
                try await connection.query(
                    """
                    UPDATE \(unescaped: schema).outbox
                    SET published_at = now(), attempts = attempts + 1, last_error = NULL
                    WHERE position = ANY(\(confirmed))
                    """,
                    logger: logger
                )
            }
            if !failed.isEmpty {
                try await connection.query(
                    """
                    UPDATE \(unescaped: schema).outbox
                    SET attempts = attempts + 1,
                        last_error = 'unroutable or refused by the broker',
                        next_attempt_at = now() + least(interval '1 second' * power(2, attempts), interval '5 minutes')
                    WHERE position = ANY(\(failed))
                    """,
                    logger: logger
                )
            }
            return (confirmed, failed)
        }
        published.increment(by: confirmed.count)
        if !failed.isEmpty {
            deferred.increment(by: failed.count)
            logger.error("outbox events unroutable, will retry", metadata: ["schema": "\(schema)", "count": "\(failed.count)"])
        }
        return confirmed.count + failed.count
    }

    /// Forgets published rows and processed-event ids older than the retention period.
    private func prune() async {
        let seconds = Int(retention.components.seconds)
        do {
            try await client.query(
                "DELETE FROM \(unescaped: schema.rawValue).outbox WHERE published_at < now() - make_interval(secs => \(seconds))",
                logger: logger
            )
            // Redeliveries come within minutes; a week of ids is a wide margin for deduplication.
            try await client.query(
                "DELETE FROM \(unescaped: schema.rawValue).processed_events WHERE processed_at < now() - interval '7 days'",
                logger: logger
            )
        } catch {
            logger.warning("outbox prune failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
