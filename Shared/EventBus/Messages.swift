import EventContracts
import Foundation

/// One message to publish: persistent, `mandatory`, with its event id as the AMQP message id.
public struct OutgoingMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var messageId: String
    public var type: String
    public var body: Data

    public init(exchange: String, routingKey: String, messageId: String, type: String, body: Data) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageId = messageId
        self.type = type
        self.body = body
    }

    public init<Payload: EventPayload>(_ envelope: EventEnvelope<Payload>) throws {
        self.init(
            exchange: envelope.exchange.rawValue,
            routingKey: envelope.routingKey,
            messageId: envelope.id,
            type: envelope.type,
            body: try envelope.encoded()
        )
    }
}

/// What the broker said about one published message.
public enum PublishOutcome: Sendable, Equatable {
    /// Confirmed and routed to at least one queue: it is the broker's now.
    case confirmed
    /// Confirmed but no queue was bound for it (`mandatory` made the broker return it).
    case unroutable
    /// The broker refused it (nack): it may be retried.
    case nacked
}

/// A message taken from a queue, not yet acknowledged.
public struct Delivery: Sendable {
    public let deliveryTag: UInt64
    public let exchange: String
    public let routingKey: String
    public let messageId: String?
    public let redelivered: Bool
    /// How often the broker delivered it before (quorum queues count it).
    public let deliveryCount: Int
    public let body: Data

    public init(deliveryTag: UInt64, exchange: String, routingKey: String, messageId: String?, redelivered: Bool, deliveryCount: Int, body: Data) {
        self.deliveryTag = deliveryTag
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageId = messageId
        self.redelivered = redelivered
        self.deliveryCount = deliveryCount
        self.body = body
    }

    /// The envelope's header and body; a delivery that is not an envelope is poison.
    public func event() throws(EventBusError) -> ReceivedEvent {
        do {
            return try ReceivedEvent(body: body)
        } catch {
            throw .poison("not an event envelope: \(error)")
        }
    }
}

/// What a consumer decided about one delivery.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Processed (or deliberately skipped): remove it from the queue.
    case ack
    /// Failed for a reason that may pass: requeue it (the delivery limit bounds the retries).
    case retry
    /// Can never succeed: dead-letter it now.
    case deadLetter
}
