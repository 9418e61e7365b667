import EventBus
import EventContracts
import Foundation
import Logging
import Outbox
import PostgresNIO
import PostgresSupport
import ServiceRuntime

/// Storing sends and announcing them: one code path for the websocket path (`message.sent`
/// events, a batch at a time) and the HTTP send path.
enum MessageSending {
    /// Stores the sends in order, in one transaction, and announces the new messages as one
    /// `message.stored` batch (one outbox row, one broker message), written by the statement that
    /// inserts them and handed to the relay once committed: it publishes the batch at once, with no
    /// relay round to wait for (the row is there should it not). Retries are rare, so the batch is
    /// first stored without looking them up (a statement, and an index probe per send, saved); when
    /// it held one after all (the insert fails on its key, or a send would be refused), it is
    /// stored again in a new transaction, looking them up. That can meet a retry only if the same
    /// send was stored concurrently in between (the HTTP path racing the socket's), so a third try
    /// settles it.
    ///
    /// A batch whose conversations the store knows already is first stored in one statement with no
    /// transaction around it (`storeAsKnown`), which writes nothing if one of them changed since.
    static func store(_ sends: [MessageSent], store: MessagesStore, dependencies: ServiceDependencies) async throws -> [SendResult] {
        let announcing: @Sendable ([MessageStored]) throws -> [OutgoingMessage] = { try dependencies.announcements(batch: $0) }
        // Not `dependencies.transaction`: no relay round needs waking for rows handed off.
        func attempt(lookingUpRetries: Bool) async throws -> StoredSends {
            try await dependencies.postgres.transaction(logger: dependencies.logger) { connection in
                try await store.store(sends, at: Date(), lookingUpRetries: lookingUpRetries, announcing: announcing, on: connection)
            }
        }
        func handOver(_ stored: StoredSends) -> [SendResult] {
            dependencies.relay.handOff(stored.announcements)
            return stored.results
        }
        var lookUpRetries = [false, true]
        switch try await store.storeAsKnown(sends, at: Date(), announcing: announcing, client: dependencies.postgres) {
        case .stored(let stored): return handOver(stored)
        case .mayHoldRetries: lookUpRetries = [true]
        case .unknown, .stale: break
        }
        for lookingUpRetries in lookUpRetries {
            do { return handOver(try await attempt(lookingUpRetries: lookingUpRetries)) } catch is MayHoldRetries { continue }
        }
        return handOver(try await attempt(lookingUpRetries: true))
    }

    /// Answers the senders of sends that stored nothing new (a retry gets its message again, a
    /// refusal its error), one broker message per socket-handler instance. Best effort, after the
    /// commit and not through the outbox: only a connection still waiting needs it, and one that
    /// misses it sends again and is answered again.
    static func answer(_ answers: [(instanceId: String, SendAnswered)], publisher: EventPublisher, producer: String, logger: Logger) async {
        let byInstance = Dictionary(grouping: answers.filter { !$0.instanceId.isEmpty }, by: \.instanceId)
        guard !byInstance.isEmpty else { return }
        do {
            let messages = try byInstance.map { instance, answers in try OutgoingMessage.toInstance(instance, producer: producer, answers.map(\.1)) }
            _ = try await publisher.publish(messages)
        } catch {
            logger.debug("could not answer senders directly; they will retry", metadata: ["error": "\(error)"])
        }
    }
}
