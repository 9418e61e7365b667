import EventBus
import EventContracts
import Foundation
import Logging
import Outbox
import PostgresNIO
import ServiceRuntime

/// Storing sends and announcing them: one code path for the websocket path (`message.sent`
/// events, in batches) and the HTTP send path.
enum MessageSending {
    /// Stores each send in order on `connection` (inside the caller's transaction) and enqueues
    /// `message.stored` for every stored one. A repeated (sender, clientMsgId) is announced again
    /// with the original message, so a sender whose ack was lost still gets one.
    static func store(
        _ sends: [MessageSent],
        store: MessagesStore,
        dependencies: ServiceDependencies,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [SendResult] {
        let results = try await store.store(sends, at: Date(), on: connection)
        var events: [OutgoingMessage] = []
        for case .stored(let message, let memberIds, _) in results {
            events.append(try OutgoingMessage(EventEnvelope(producer: dependencies.name, payload: MessageStored(message: message, memberIds: memberIds))))
        }
        try await dependencies.outbox.enqueue(events, on: connection, logger: logger)
        return results
    }
}
