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
/// publishing the same row concurrently) and deleted by the statement that takes them, published
/// with confirms, and the transaction commits only after the broker confirmed them. A broker
/// outage rolls the transaction back and the rows wait; a crash after the confirm but before the
/// commit republishes them, which idempotent consumers absorb (so the commit need not wait for
/// the disk: `synchronous_commit` is off for it). Unroutable rows are retried with a growing
/// delay.
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

    /// One batch in one transaction; returns how many rows it looked at. The rows are taken out
    /// of the outbox before the publish and the transaction commits once the broker confirmed all
    /// of them. When it refused some (unroutable, say), the transaction rolls back, which puts
    /// every row back, and a second one deletes the confirmed rows and delays the refused ones.
    func relayBatch() async throws -> Int {
        let batchSize = batchSize
        let publisher = publisher
        let logger = logger
        let relayed: Int
        do {
            relayed = try await client.transaction(logger: logger) { connection -> Int in
                var taken: [(position: Int64, message: OutgoingMessage)] = []
                let rows = try await connection.execute(OutboxStatements.Take(limit: batchSize), logger: logger)
                for try await (position, eventID, exchange, routingKey, type, body) in rows {
                    let body = Data(body.readableBytesView)
                    taken.append((position, OutgoingMessage(exchange: exchange, routingKey: routingKey, messageId: eventID, type: type, body: body)))
                }
                guard !taken.isEmpty else { return 0 }
                taken.sort { $0.position < $1.position }
                let publishing = ContinuousClock.now
                let outcomes = try await publisher.publish(taken.map(\.message))
                publishTime.recordNanoseconds((ContinuousClock.now - publishing).nanoseconds)
                // Every row taken is deleted at the commit: it must have been confirmed, each one.
                guard outcomes.count == taken.count, outcomes.allSatisfy({ $0 == .confirmed }) else {
                    var round = PartlyRefused(confirmed: [], refused: [])
                    for (index, row) in taken.enumerated() {
                        if index < outcomes.count, outcomes[index] == .confirmed {
                            round.confirmed.append(row.position)
                        } else {
                            round.refused.append(row.position)
                        }
                    }
                    throw round
                }
                return taken.count
            }
        } catch let refused as PartlyRefused {
            try await settle(refused)
            return refused.confirmed.count + refused.refused.count
        }
        published.increment(by: relayed)
        return relayed
    }

    /// A round's rows of which the broker refused some (the round's transaction rolled back).
    private struct PartlyRefused: Error {
        var confirmed: [Int64]
        var refused: [Int64]
    }

    /// The rows of a partly refused round, back in the outbox: the confirmed ones deleted, the
    /// refused ones retried with a growing delay. Another relay may have published some of them
    /// again meanwhile, which idempotent consumers absorb.
    private func settle(_ round: PartlyRefused) async throws {
        let logger = logger
        try await client.transaction(logger: logger) { connection in
            if !round.confirmed.isEmpty {
                try await connection.run(OutboxStatements.Delete(positions: round.confirmed), logger: logger)
            }
            try await connection.query(
                """
                UPDATE outbox
                SET attempts = attempts + 1,
                    last_error = 'unroutable or refused by the broker',
                    next_attempt_at = now() + least(interval '1 second' * power(2, attempts), interval '5 minutes')
                WHERE position = ANY(\(round.refused))
                """,
                logger: logger
            )
        }
        published.increment(by: round.confirmed.count)
        deferred.increment(by: round.refused.count)
        logger.error("outbox events unroutable, will retry", metadata: ["schema": "\(schema)", "count": "\(round.refused.count)"])
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
