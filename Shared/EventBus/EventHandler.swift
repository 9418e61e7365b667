import EventContracts

/// The one shape of every consumer in SwiftChat: a handler declares the queue it reads and the
/// typed events it takes, and handles them a batch at a time, with one round trip per dependency
/// per batch. `EventConsumer` runs it: it fetches what has arrived (up to the prefetch), decodes
/// each broker message once into `Event` values (a batch envelope yields several), and acks what
/// the handler finished.
///
/// A batch that throws is retried whole while the error says a server is away (the batch waits,
/// nothing is dead-lettered for an outage), and otherwise split in halves down to single items, so
/// that one bad item is dead-lettered alone and every other item goes through (the public contract).
public protocol EventHandler: Sendable {
    associatedtype Event: EventSet

    /// The queue this handler reads; its bindings are the routing keys of `Event`.
    var subscription: Subscription { get }

    /// Handles `batch` in order. Returns one outcome per item, or throws when the batch as a whole
    /// failed (nothing of it took effect: one transaction).
    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome]

    /// An item failed on its own and is dead-lettered: tell whoever is waiting for it.
    func isolated(_ item: IncomingEvent<Event>, error: any Error) async
}

extension EventHandler {
    public func isolated(_ item: IncomingEvent<Event>, error: any Error) async {}
}

/// What became of one event.
public enum EventOutcome: Sendable, Equatable {
    /// Applied, or deliberately skipped.
    case done
    /// Can never succeed: it goes to the dead-letter queue.
    case deadLetter(String)

    /// `count` items, all done.
    public static func done(_ count: Int) -> [EventOutcome] { Array(repeating: .done, count: count) }
}

/// Which queue a handler reads, and how.
public struct Subscription: Sendable {
    public enum Kind: Sendable {
        /// A durable quorum queue shared by every replica of the service (competing consumers),
        /// replicated by the broker, with a delivery limit and a dead-letter queue `<queue>.dead`.
        /// `singleActiveConsumer` keeps the queue's order across replicas.
        case shared(singleActiveConsumer: Bool = false, deliveryLimit: Int = Topology.defaultDeliveryLimit)
        /// One process's own queue, bound on the direct `InstanceDelivery` exchange by its instance
        /// id (plus the other exchanges' routing keys of `Event`). A classic, non-replicated queue
        /// that goes with the process's connection: what it holds is for sockets of this process
        /// only, worthless once the process is gone, and recovered by catch-up when lost.
        case instance(id: String)
        /// A queue declared by someone else (a dead-letter queue, say): read as it is.
        case existing
    }

    public var queue: String
    public var kind: Kind
    /// Deliveries the broker may have in flight to this consumer.
    public var prefetch: Int
    /// The most deliveries taken from the queue at once.
    public var batchSize: Int
    /// The most events handed to the handler at once (a delivery may carry a batch envelope of
    /// many): bigger takes are handled in turn, so one transaction never grows without bound.
    public var maxEvents: Int

    public init(queue: String, kind: Kind, prefetch: Int = 256, batchSize: Int? = nil, maxEvents: Int = 1024) {
        self.queue = queue
        self.kind = kind
        self.prefetch = max(1, prefetch)
        self.batchSize = max(1, min(batchSize ?? prefetch, prefetch))
        self.maxEvents = max(1, maxEvents)
    }

    /// The queue, its dead-letter queue and the bindings for `types`.
    public func topology(for types: [(exchange: EventExchange, type: String)]) -> Topology {
        switch kind {
        case .shared(let singleActiveConsumer, let deliveryLimit):
            return .consumer(
                queue: queue, bindings: types.map { QueueBinding($0.exchange, $0.type) }, deliveryLimit: deliveryLimit,
                singleActiveConsumer: singleActiveConsumer
            )
        case .instance(let id):
            let others = types.filter { $0.exchange != .instanceDelivery }.map { QueueBinding($0.exchange, $0.type) }
            return .instance(queue: queue, routingKey: id, extraBindings: others)
        case .existing:
            return Topology(queues: [])
        }
    }
}
