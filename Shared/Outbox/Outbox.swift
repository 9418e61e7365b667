import EventBus
import EventContracts
import Foundation
import Logging
import PostgresNIO
import PostgresSupport

/// Writes events into the service's outbox table inside the caller's transaction, so that the
/// business change and the announcement of it commit together or not at all (DESIGN.md §5.4).
public struct Outbox: Sendable {
    public let schema: SchemaName

    public init(schema: SchemaName) {
        self.schema = schema
    }

    /// The outbox's own migrations, to run before the service's.
    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "outbox")
    }

    /// Adds an event to the outbox on `connection`, which must be inside the caller's transaction.
    public func enqueue<Payload: EventPayload>(_ envelope: EventEnvelope<Payload>, on connection: PostgresConnection, logger: Logger) async throws {
        try await enqueue(OutgoingMessage(envelope), on: connection, logger: logger)
    }

    public func enqueue(_ message: OutgoingMessage, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO \(unescaped: schema.rawValue).outbox (event_id, exchange, routing_key, event_type, body)
            VALUES (\(message.messageId), \(message.exchange), \(message.routingKey), \(message.type), \(ByteBuffer(bytes: message.body)))
            """,
            logger: logger
        )
    }
}
