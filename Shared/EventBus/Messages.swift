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

    /// Many events of one type in one broker message.
    public init<Payload: EventPayload>(_ batch: EventBatchEnvelope<Payload>) throws {
        self.init(
            exchange: batch.exchange.rawValue,
            routingKey: batch.routingKey,
            messageId: batch.id,
            type: batch.type,
            body: try batch.encoded()
        )
    }

    /// `payloads` as one batch envelope, addressed to one instance's queue on the direct
    /// `InstanceDelivery` exchange (routing key = the instance id).
    public static func toInstance<Payload: EventPayload>(_ instanceId: String, producer: String, _ payloads: [Payload]) throws -> OutgoingMessage {
        var message = try OutgoingMessage(EventBatchEnvelope(producer: producer, payloads: payloads))
        message.routingKey = instanceId
        return message
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
    /// The event type the publisher set on the message (the envelope's `type`), when it did.
    public let type: String?
    public let redelivered: Bool
    /// How often the broker delivered it before (quorum queues count it).
    public let deliveryCount: Int
    public let body: Data

    public init(
        deliveryTag: UInt64, exchange: String, routingKey: String, messageId: String?, type: String? = nil, redelivered: Bool, deliveryCount: Int,
        body: Data
    ) {
        self.deliveryTag = deliveryTag
        self.exchange = exchange
        self.routingKey = routingKey
        self.messageId = messageId
        self.type = type
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
