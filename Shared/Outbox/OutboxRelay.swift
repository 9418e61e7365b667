import BlockingExecutor
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
///
/// On the hot path a writer hands its events over instead (`handOff`): it wrote their rows held
/// for a while (`Outbox.insertion(handedOff:)`), and the relay publishes them from memory at once,
/// with no round to wait for and no rows to read back, then deletes their rows. Rows it could not
/// publish (a broker away, a crash) are the rounds' once their hold is over.
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
    private let handOffs: BatchQueue<HandOff>
    private let progress = Mutex(Progress())
    private let published = Counter(label: "swiftchat_outbox_published_total")
    private let deferred = Counter(label: "swiftchat_outbox_deferred_total")
    private let failedRounds = Counter(label: "swiftchat_outbox_failed_rounds_total")
    /// Rounds that published something, and the broker's part of them (publishing and waiting for
    /// the confirms): with the consumers' handler times, what each stage of a message's path costs
    /// (`make bench` prints them).
    private let roundTime = Timer(label: "swiftchat_outbox_round_seconds")
    private let publishTime = Timer(label: "swiftchat_outbox_publish_seconds")
    /// Hand-offs published (and confirmed); their rows are deleted after.
    private let handOffTime = Timer(label: "swiftchat_outbox_handoff_seconds")
    private let backlog = Gauge(label: "swiftchat_outbox_backlog")
    private let oldestAge = Gauge(label: "swiftchat_outbox_oldest_age_seconds")

    private struct Progress {
        /// When the round under way started; nil between rounds.
        var roundStarted: ContinuousClock.Instant?
        /// When the hand-off being published started; nil between them.
        var handOffStarted: ContinuousClock.Instant?
    }

    /// An event handed over, and when.
    private struct HandOff: Sendable {
        let message: OutgoingMessage
        let at: ContinuousClock.Instant
    }

    /// How long a hand-off may wait and then take to publish: half its rows' hold, so that it is
    /// over before a round may take them (unless the broker is away, and then both publish it).
    private static let handOffPatience = Outbox.handOffHold / 2

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
        // Past this many waiting (a broker away for long), hand-offs wait out their hold instead.
        handOffs = BatchQueue(capacity: 20 * batchSize)
    }

    /// Asks the relay to look at the outbox now (call after committing a transaction that wrote to
    /// it); without it, new rows wait at most `pollInterval`.
    public func notify() {
        wake.yield()
    }

    /// Publishes events whose rows were written handed off (`Outbox.insertion(handedOff:)`) and
    /// committed: at once, in the order handed over, then deletes their rows. Never waits. What it
    /// does not publish (the broker refused it, or was away) stays in the outbox, for the rounds
    /// to publish once the rows' hold is over.
    public func handOff(_ messages: [OutgoingMessage]) {
        let now = ContinuousClock.now
        // Full (the broker away for long): what does not fit waits out its hold.
        handOffs.append(contentsOf: messages.lazy.map { HandOff(message: $0, at: now) })
    }

    /// True when a round or a hand-off has been under way for longer than `stallAfter` (its
    /// deadline did not end it): the relay is stuck in an await that does not return, and the
    /// process should restart.
    public var isStalled: Bool {
        let now = ContinuousClock.now
        return progress.withLock { progress in
            [progress.roundStarted, progress.handOffStarted].contains { $0.map { now - $0 > stallAfter } ?? false }
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            // Ends on graceful shutdown, once what was handed over is published and its rows deleted.
            group.addTask { [self] in await runHandOffs() }
            await withDiscardingTaskGroup { rounds in
                rounds.addTask { [wake, pollInterval] in
                    while !Task.isCancelled {
                        try? await LoopTimer.sleep(for: pollInterval)
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
                rounds.cancelAll()
            }
        }
        // Last chance for what was committed just before shutdown: what was handed over after the
        // hand-offs' loop ended, and what the rounds may take.
        await handOffs.drain(maxBatch: batchSize) { await deleteHandedOff(await publishHandedOff($0)) }
        await drain()
        await publisher.shutdown()
    }

    /// Publishes hand-offs as they come, whatever came meanwhile together; a hand-off's rows are
    /// deleted while the next one waits for its confirms.
    private func runHandOffs() async {
        let (confirmed, confirming) = AsyncStream.makeStream(of: [String].self)
        await withDiscardingTaskGroup { deletions in
            deletions.addTask { [self] in
                for await eventIDs in confirmed { await deleteHandedOff(eventIDs) }
            }
            await handOffs.run(window: .zero, interval: publisher.batchInterval, maxBatch: batchSize) {
                confirming.yield(await publishHandedOff($0))
            }
            confirming.finish()
        }
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
                            round.confirmed.append(row.message.messageId)
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

    /// Publishes handed-off events, within `handOffPatience` of their hand-off; returns the ids of
    /// those confirmed. The others keep their rows, for the rounds after the hold: those the broker
    /// refused, and those handed over too long ago (kept waiting while the broker was away).
    private func publishHandedOff(_ batch: [HandOff]) async -> [String] {
        let started = ContinuousClock.now
        let fresh = batch.filter { started - $0.at < Self.handOffPatience }
        guard let oldest = fresh.first?.at else { return [] }
        let messages = fresh.map(\.message)
        progress.withLock { $0.handOffStarted = started }
        defer { progress.withLock { $0.handOffStarted = nil } }
        do {
            let outcomes = try await withDeadline(Self.handOffPatience - (started - oldest), "an outbox hand-off") { [publisher] in
                try await publisher.publish(messages)
            }
            handOffTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            let confirmed = zip(messages, outcomes).filter { $0.1 == .confirmed }.map(\.0.messageId)
            published.increment(by: confirmed.count)
            return confirmed
        } catch {
            guard !Task.isCancelled else { return [] }
            failedRounds.increment()
            logger.warning(
                "outbox hand-off failed; its rows wait for the relay's rounds",
                metadata: ["schema": "\(schema)", "count": "\(messages.count)", "error": "\(String(reflecting: error))"])
            return []
        }
    }

    /// Deletes the rows of published hand-offs. Should it fail, the rounds publish them again after
    /// their hold, which consumers absorb.
    private func deleteHandedOff(_ eventIDs: [String]) async {
        guard !eventIDs.isEmpty else { return }
        do {
            try await withDeadline(roundDeadline, "deleting published hand-offs' rows") { [client, logger] in
                try await client.withConnection { try await $0.run(OutboxStatements.Delete(eventIDs: eventIDs), logger: logger) }
            }
        } catch {
            guard !Task.isCancelled else { return }
            logger.warning(
                "could not delete published hand-offs' rows; the relay's rounds will publish them again",
                metadata: ["schema": "\(schema)", "count": "\(eventIDs.count)", "error": "\(String(reflecting: error))"])
        }
    }

    /// A round's rows of which the broker refused some (the round's transaction rolled back).
    private struct PartlyRefused: Error {
        /// Event ids (their rows are deleted as hand-offs' are), and positions.
        var confirmed: [String]
        var refused: [Int64]
    }

    /// The rows of a partly refused round, back in the outbox: the confirmed ones deleted, the
    /// refused ones retried with a growing delay. Another relay may have published some of them
    /// again meanwhile, which idempotent consumers absorb.
    private func settle(_ round: PartlyRefused) async throws {
        let logger = logger
        try await client.transaction(logger: logger) { connection in
            if !round.confirmed.isEmpty {
                try await connection.run(OutboxStatements.Delete(eventIDs: round.confirmed), logger: logger)
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
                // Both columns are read before either is recorded.
                if let (count, age) = try await rows.readFirst({ reader in try (reader.next(), reader.next()) as (Int64, Double) }) {
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
