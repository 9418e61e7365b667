import EventContracts
import Foundation
import Logging
import Outbox
import PostgresNIO

/// Storing sends and announcing them: one code path for the websocket path (`message.sent`
/// events, in batches) and the HTTP send path.
enum MessageSending {
    /// Stores each send in order on `connection` (inside the caller's transaction) and enqueues
    /// `message.stored` for every stored one. A repeated (sender, clientMsgId) is announced again
    /// with the original message, so a sender whose ack was lost still gets one.
    static func store(
        _ sends: [MessageSent],
        store: MessagesStore,
        outbox: Outbox,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [SendResult] {
        var results: [SendResult] = []
        for send in sends {
            let result = try await store.store(send, at: Date(), on: connection)
            if case .stored(let message, let memberIds, _) = result {
                let event = EventEnvelope(producer: MessagesRoutes.producer, payload: MessageStored(message: message, memberIds: memberIds))
                try await outbox.enqueue(event, on: connection, logger: logger)
            }
            results.append(result)
        }
        return results
    }
}
