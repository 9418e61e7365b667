import Logging
import PostgresNIO
import PostgresSupport

/// Applies each event at most once: the event id is recorded in `<schema>.processed_events` in
/// the same transaction as the consumer's own changes. A redelivered (or republished) event finds
/// its id already there and is skipped; a failed transaction records nothing, so it is retried.
public struct IdempotentConsumer: Sendable {
    public enum Outcome: Sendable, Equatable {
        case applied
        case duplicate
    }

    public let client: PostgresClient
    public let schema: SchemaName
    /// Distinguishes several consumers that share one schema.
    public let consumer: String

    public init(client: PostgresClient, schema: SchemaName, consumer: String) {
        self.client = client
        self.schema = schema
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
        let schema = schema.rawValue
        let consumer = consumer
        return try await client.transaction(logger: logger) { connection -> Result? in
            // A concurrent duplicate blocks on the primary key until the first commits or rolls back.
            let rows = try await connection.query(
                """
                INSERT INTO \(unescaped: schema).processed_events (consumer, event_id)
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
}
