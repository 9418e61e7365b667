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
        guard !messages.isEmpty else { return }
        try await connection.run(OutboxStatements.Enqueue(messages: messages), logger: logger)
    }

    public func enqueue(_ message: OutgoingMessage, on connection: PostgresConnection, logger: Logger) async throws {
        try await enqueue([message], on: connection, logger: logger)
    }
}
