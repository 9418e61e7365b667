import Logging
import PostgresNIO
import PostgresSupport

/// Applies each event at most once: the event id is recorded in `processed_events` (in the service's schema) in
/// the same transaction as the consumer's own changes. A redelivered (or republished) event finds
/// its id already there and is skipped; a failed transaction records nothing, so it is retried.
public struct IdempotentConsumer: Sendable {
    public enum Outcome: Sendable, Equatable {
        case applied
        case duplicate
    }

    public let client: PostgresClient
    /// Distinguishes several consumers that share one schema.
    public let consumer: String

    public init(client: PostgresClient, consumer: String) {
        self.client = client
        self.consumer = consumer
    }

    /// Runs `apply` in a transaction unless `eventID` was already processed; acknowledge the
    /// delivery only after this returns.
    public func process(
        eventID: String,
        logger: Logger,
        _ apply: (PostgresConnection) async throws -> Void
    ) async throws -> Outcome {
        try await processReturning(eventID: eventID, logger: logger, apply).map { Outcome.applied } ?? .duplicate
    }

    /// `process`, handing back what `apply` returned: nil when the event was a duplicate.
    public func processReturning<Result: Sendable>(
        eventID: String,
        logger: Logger,
        _ apply: (PostgresConnection) async throws -> Result
    ) async throws -> Result? {
        let consumer = consumer
        return try await client.transaction(logger: logger) { connection -> Result? in
            // A concurrent duplicate blocks on the primary key until the first commits or rolls back.
            let rows = try await connection.query(
                """
                INSERT INTO processed_events (consumer, event_id)
                VALUES (\(consumer), \(eventID))
                ON CONFLICT DO NOTHING
                RETURNING event_id
                """,
                logger: logger
            )
            var inserted = false
            for try await _ in rows { inserted = true }
            guard inserted else { return nil }
            return try await apply(connection)
        }
    }

    /// A batch in one transaction: records every id at once and hands `apply` which of them are
    /// new (true) and which were processed before (false), in order. Acknowledge after it returns.
    public func processBatch<Result: Sendable>(
        eventIDs: [String],
        logger: Logger,
        _ apply: (PostgresConnection, _ fresh: [Bool]) async throws -> Result
    ) async throws -> Result {
        let consumer = consumer
        return try await client.transaction(logger: logger) { connection -> Result in
            let rows = try await connection.execute(RecordProcessed(consumer: consumer, eventIDs: eventIDs), logger: logger)
            var inserted = Set<String>()
            for try await id in rows { inserted.insert(id) }
            // The same id twice in one batch (a redelivered copy): the first one is fresh.
            var seen = Set<String>()
            let fresh = eventIDs.map { inserted.contains($0) && seen.insert($0).inserted }
            return try await apply(connection, fresh)
        }
    }
}

/// Records a batch's event ids; returns those not seen before. Prepared: every batch runs it.
struct RecordProcessed: PostgresPreparedStatement {
    static let name = "processed_events_record"
    static let sql = """
        INSERT INTO processed_events (consumer, event_id)
        SELECT $1, id FROM unnest($2::text[]) AS batch(id)
        ON CONFLICT DO NOTHING
        RETURNING event_id
        """
    typealias Row = String
    let consumer: String
    let eventIDs: [String]

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(consumer)
        bindings.append(eventIDs)
        return bindings
    }
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(String.self) }
}
