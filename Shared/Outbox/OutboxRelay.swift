import EventBus
import Foundation
import Logging
import Metrics
import PostgresNIO
import PostgresSupport
import ServiceConfig
import ServiceLifecycle
import Synchronization

/// Publishes the outbox to RabbitMQ, as a lifecycle `Service`.
///
/// Rows are taken in order with `FOR UPDATE SKIP LOCKED` (so replicas share the work without
/// publishing the same row concurrently), published with confirms, and deleted in the same
/// transaction only after the broker confirmed them. A broker outage rolls the transaction back
/// and the rows wait; a crash after the confirm but before the commit republishes them, which
/// idempotent consumers absorb (so the commit need not wait for the disk: `synchronous_commit`
/// is off for it). Unroutable rows are retried with a growing delay.
///
/// Every round has a deadline: a round that hangs (a server killed mid-round, a half-open socket)
/// is cancelled, its connection dropped, and the next round starts. `isStalled` says when no
/// round has finished for a while although rows wait, for `/healthz` to report.
public final class OutboxRelay: Service {
    private let client: PostgresClient
    private let schema: SchemaName
    private let publisher: EventPublisher
    private let logger: Logger
    private let batchSize: Int
    private let pollInterval: Duration
    private let roundDeadline: Duration
    private let stallAfter: Duration
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let progress = Mutex(Progress())
    private let published = Counter(label: "swiftchat_outbox_published_total")
    private let deferred = Counter(label: "swiftchat_outbox_deferred_total")
    private let failedRounds = Counter(label: "swiftchat_outbox_failed_rounds_total")
    /// Rounds that published something, and the broker's part of them (publishing and waiting for
    /// the confirms): with the consumers' handler times, what each stage of a message's path costs
    /// (`make bench` prints them).
    private let roundTime = Timer(label: "swiftchat_outbox_round_seconds")
    private let publishTime = Timer(label: "swiftchat_outbox_publish_seconds")
    private let backlog = Gauge(label: "swiftchat_outbox_backlog")
    private let oldestAge = Gauge(label: "swiftchat_outbox_oldest_age_seconds")

    private struct Progress {
        /// When the round under way started; nil between rounds.
        var roundStarted: ContinuousClock.Instant?
    }

    public init(
        client: PostgresClient,
        schema: SchemaName,
        publisher: EventPublisher,
        logger: Logger,
        batchSize: Int = 256,
        pollInterval: Duration = .seconds(1),
        roundDeadline: Duration = .seconds(15),
        stallAfter: Duration = .seconds(60)
    ) {
        self.client = client
        self.schema = schema
        self.publisher = publisher
        self.logger = logger
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.roundDeadline = roundDeadline
        self.stallAfter = stallAfter
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the relay to look at the outbox now (call after committing a transaction that wrote to
    /// it); without it, new rows wait at most `pollInterval`.
    public func notify() {
        wake.yield()
    }

    /// True when a round has been under way for longer than `stallAfter` (its deadline did not end
    /// it): the relay is stuck in an await that does not return, and the process should restart.
    public var isStalled: Bool {
        progress.withLock { $0.roundStarted.map { ContinuousClock.now - $0 > stallAfter } ?? false }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { [wake, pollInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    wake.yield()
                }
            }
            var lastLook = ContinuousClock.now - .seconds(3600)
            for await _ in wakeups.cancelOnGracefulShutdown() {
                await drain()
                // The backlog metrics and the housekeeping: at most every ten seconds.
                if ContinuousClock.now - lastLook > .seconds(10) {
                    lastLook = .now
                    await look()
                }
            }
            group.cancelAll()
        }
        // Last chance for what was committed just before shutdown.
        await drain()
        await publisher.shutdown()
    }

    /// Publishes until the outbox has nothing ready, or a round fails.
    public func drain() async {
        while true {
            progress.withLock { $0.roundStarted = .now }
            defer { progress.withLock { $0.roundStarted = nil } }
            do {
                let started = ContinuousClock.now
                let relayed = try await withDeadline(roundDeadline, "an outbox round") { [self] in try await relayBatch() }
                if relayed > 0 { roundTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
                if relayed < batchSize { return }
            } catch  where Task.isCancelled {
                // Cancelled (shutdown past its grace, or the service group ending): not a failure;
                // the rows stay in the outbox for the next start.
                return
            } catch {
                failedRounds.increment()
                logger.warning("outbox relay paused", metadata: ["schema": "\(schema)", "error": "\(String(reflecting: error))"])
                return
            }
        }
    }

    /// One batch in one transaction; returns how many rows it looked at.
    func relayBatch() async throws -> Int {
        let batchSize = batchSize
        let publisher = publisher
        let logger = logger
        let (confirmed, failed) = try await client.transaction(logger: logger) { connection -> ([Int64], [Int64]) in
            var positions: [Int64] = []
            var messages: [OutgoingMessage] = []
            let rows = try await connection.execute(OutboxStatements.TakeReady(limit: batchSize), logger: logger)
            for try await (position, eventID, exchange, routingKey, type, body) in rows {
                positions.append(position)
                messages.append(OutgoingMessage(exchange: exchange, routingKey: routingKey, messageId: eventID, type: type, body: Data(body.readableBytesView)))
            }
            guard !messages.isEmpty else { return ([], []) }
            let publishing = ContinuousClock.now
            let outcomes = try await publisher.publish(messages)
            publishTime.recordNanoseconds((ContinuousClock.now - publishing).nanoseconds)
            var confirmed: [Int64] = []
            var failed: [Int64] = []
            for (position, outcome) in zip(positions, outcomes) {
                if outcome == .confirmed { confirmed.append(position) } else { failed.append(position) }
            }
            if !confirmed.isEmpty {
                try await connection.run(OutboxStatements.Delete(positions: confirmed), logger: logger)
            }
            if !failed.isEmpty {
                try await connection.query(
                    """
                    UPDATE outbox
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

    /// The backlog (rows waiting, the oldest one's age) for the metrics, and old processed-event
    /// ids forgotten.
    private func look() async {
        do {
            try await withDeadline(roundDeadline, "an outbox look") { [self] in
                let rows = try await client.query(
                    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox WHERE published_at IS NULL",
                    logger: logger
                )
                for try await (count, age) in rows.decode((Int64, Double).self) {
                    backlog.record(count)
                    oldestAge.record(age)
                }
                // Redeliveries come within minutes; a week of ids is a wide margin for deduplication.
                try await client.query("DELETE FROM processed_events WHERE processed_at < now() - interval '7 days'", logger: logger)
            }
        } catch {
            logger.warning("outbox look failed", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}
