import EventContracts

/// An exchange to declare (durable, idempotently).
public struct ExchangeSpec: Sendable, Hashable {
    public var name: String
    public var kind: ExchangeKind

    public init(name: String, kind: ExchangeKind) {
        self.name = name
        self.kind = kind
    }

    public init(_ exchange: EventExchange) {
        self.init(name: exchange.rawValue, kind: exchange.kind)
    }
}

public struct QueueBinding: Sendable, Hashable {
    public var exchange: String
    public var routingKey: String

    public init(exchange: String, routingKey: String) {
        self.exchange = exchange
        self.routingKey = routingKey
    }

    public init(_ exchange: EventExchange, _ routingKey: String) {
        self.init(exchange: exchange.rawValue, routingKey: routingKey)
    }
}

/// A durable queue. Consumer queues are quorum queues with an explicit delivery limit (RabbitMQ
/// 3.10 has no default) and a dead-letter exchange, so a poison message cannot loop forever.
public struct QueueSpec: Sendable, Hashable {
    public var name: String
    public var bindings: [QueueBinding]
    public var quorum: Bool
    /// Deliveries after which the broker dead-letters a message; 0 for none.
    public var deliveryLimit: Int
    public var deadLetterExchange: String?
    public var deadLetterRoutingKey: String?
    /// A classic queue that lives only as long as the connection that declared it (per-instance
    /// live delivery: nothing in it is worth keeping once its instance is gone).
    public var transient: Bool
    /// Only one consumer at a time receives, in queue order; another takes over if it goes away.
    public var singleActiveConsumer: Bool

    public init(
        name: String,
        bindings: [QueueBinding],
        quorum: Bool = true,
        deliveryLimit: Int = 0,
        deadLetterExchange: String? = nil,
        deadLetterRoutingKey: String? = nil,
        transient: Bool = false,
        singleActiveConsumer: Bool = false
    ) {
        self.transient = transient
        self.singleActiveConsumer = singleActiveConsumer
        self.name = name
        self.bindings = bindings
        self.quorum = quorum
        self.deliveryLimit = deliveryLimit
        self.deadLetterExchange = deadLetterExchange
        self.deadLetterRoutingKey = deadLetterRoutingKey
    }
}

/// What one component declares on connect: exchanges, then queues and their bindings.
public struct Topology: Sendable {
    public var exchanges: [ExchangeSpec]
    public var queues: [QueueSpec]

    public init(exchanges: [ExchangeSpec] = Topology.standardExchanges, queues: [QueueSpec] = []) {
        self.exchanges = exchanges
        self.queues = queues
    }

    /// The exchanges of the public contract, declared by every publisher and consumer.
    public static let standardExchanges: [ExchangeSpec] = EventExchange.allCases.map(ExchangeSpec.init)

    /// The default number of deliveries before a message is dead-lettered.
    public static let defaultDeliveryLimit = 5

    /// One consumer's durable quorum queue plus its dead-letter queue `<queue>.dead`.
    public static func consumer(
        queue: String,
        bindings: [QueueBinding],
        deliveryLimit: Int = Topology.defaultDeliveryLimit,
        singleActiveConsumer: Bool = false
    ) -> Topology {
        let deadLetterKey = "\(queue).dead"
        let main = QueueSpec(
            name: queue,
            bindings: bindings,
            quorum: true,
            deliveryLimit: deliveryLimit,
            deadLetterExchange: EventExchange.deadLetters.rawValue,
            deadLetterRoutingKey: deadLetterKey,
            singleActiveConsumer: singleActiveConsumer
        )
        let dead = QueueSpec(
            name: deadLetterKey,
            bindings: [QueueBinding(.deadLetters, deadLetterKey)],
            quorum: true
        )
        return Topology(queues: [main, dead])
    }

    /// One instance's own queue on the direct exchange, routing key = the instance id.
    public static func instance(queue: String, routingKey: String, extraBindings: [QueueBinding] = []) -> Topology {
        Topology(queues: [
            QueueSpec(name: queue, bindings: [QueueBinding(.instanceDelivery, routingKey)] + extraBindings, quorum: false, transient: true)
        ])
    }
}
