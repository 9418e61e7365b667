import EventBus
import EventContracts
import Foundation
import Logging
import PostgresNIO
import PostgresSupport

/// Writes events into the service's outbox table inside the caller's transaction, so that the
/// business change and the announcement of it commit together or not at all (the public contract).
public struct Outbox: Sendable {
    public init() {}

    /// The outbox's own migrations, to run before the service's.
    public static func migrations() throws -> [Migration] {
        try Migration.load(bundle: .module, owner: "outbox")
    }

    /// Adds an event to the outbox on `connection`, which must be inside the caller's transaction.
    public func enqueue<Payload: EventPayload>(_ envelope: EventEnvelope<Payload>, on connection: PostgresConnection, logger: Logger) async throws {
        try await enqueue(OutgoingMessage(envelope), on: connection, logger: logger)
    }

    /// Several events in one statement (a batch of stored messages, say).
    public func enqueue(_ messages: [OutgoingMessage], on connection: PostgresConnection, logger: Logger) async throws {
        guard messages.count > 1 else {
            if let message = messages.first { try await enqueue(message, on: connection, logger: logger) }
            return
        }
        // Event bodies are UTF-8 JSON: sent as text, stored as bytes.
        try await connection.query(
            """
            INSERT INTO outbox (event_id, exchange, routing_key, event_type, body)
            SELECT id, exchange, routing_key, event_type, convert_to(body, 'UTF8')
            FROM unnest(\(messages.map(\.messageId)), \(messages.map(\.exchange)), \(messages.map(\.routingKey)),
                        \(messages.map(\.type)), \(messages.map { String(decoding: $0.body, as: UTF8.self) }))
                 AS batch(id, exchange, routing_key, event_type, body)
            """,
            logger: logger
        )
    }

    public func enqueue(_ message: OutgoingMessage, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO outbox (event_id, exchange, routing_key, event_type, body)
            VALUES (\(message.messageId), \(message.exchange), \(message.routingKey), \(message.type), \(ByteBuffer(bytes: message.body)))
            """,
            logger: logger
        )
    }
}
