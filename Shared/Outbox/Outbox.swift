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

extension Outbox {
    /// The `INSERT` that adds events to the outbox, its five arrays bound from `$first` on (by
    /// `bind`): the outbox's own statement, and a `WITH` member of a statement that writes its
    /// events together with its change, in one round trip (a stored batch of messages does).
    ///
    /// `handedOff` rows are for their writer to publish itself once they are committed
    /// (`OutboxRelay.handOff`): the relay's rounds leave them alone for `handOffHold`, and take
    /// them only if they are still there after it (the writer crashed, or the broker was away).
    public static func insertion(firstParameter first: Int, handedOff: Bool = false) -> String {
        let arrays = (first..<first + 5).map { "$\($0)::text[]" }.joined(separator: ", ")
        return """
            INSERT INTO outbox (event_id, exchange, routing_key, event_type, body\(handedOff ? ", next_attempt_at" : ""))
            SELECT id, exchange, routing_key, event_type, convert_to(body, 'UTF8')\(handedOff ? ", now() + interval '\(handOffHold.components.seconds) seconds'" : "")
            FROM unnest(\(arrays)) AS batch(id, exchange, routing_key, event_type, body)
            """
    }

    /// How long the relay's rounds leave a handed-off row to its writer: twice as long as the relay
    /// gives a hand-off to be published (far longer than it takes), and short enough that a
    /// writer's crash delays its events by seconds only.
    public static let handOffHold = Duration.seconds(10)

    /// The values of `insertion`'s five parameters; bodies are UTF-8 JSON, sent as text and stored
    /// as bytes.
    public static func bind(_ messages: [OutgoingMessage], to bindings: inout PostgresBindings) {
        bindings.append(messages.map(\.messageId))
        bindings.append(messages.map(\.exchange))
        bindings.append(messages.map(\.routingKey))
        bindings.append(messages.map(\.type))
        bindings.append(messages.map { String(decoding: $0.body, as: UTF8.self) })
    }
}
