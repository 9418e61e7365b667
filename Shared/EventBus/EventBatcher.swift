import EventContracts
import Logging
import Metrics
import ServiceConfig
import ServiceLifecycle

/// Publishes events from many callers as batch envelopes, as a lifecycle `Service`: `submit` only
/// queues (a socket's read loop never waits on the broker), and the batcher publishes whatever
/// arrived while the previous batch was being confirmed, up to `maxBatch` events per broker
/// message: one is in flight at a time, so under load batches grow by themselves. The first after
/// its queue ran empty waits `window` for company, then its turn: the publisher's `batchInterval`
/// after the previous first began (`BatchQueue`).
///
/// The order of `submit` calls is the order in the queue. Events the broker did not take
/// (unroutable, refused, or no confirm within the publish timeout) go to `onFailure`, so their
/// senders can be told. On graceful shutdown what is queued is published before `run` returns.
public final class EventBatcher<Payload: EventPayload>: Service {
    public typealias FailureHandler = @Sendable (_ failed: [Payload], _ reason: String) async -> Void

    private let publisher: EventPublisher
    private let producer: String
    private let window: Duration
    private let maxBatch: Int
    private let logger: Logger
    private let onFailure: FailureHandler
    @usableFromInline let queue: BatchQueue<Payload>
    private let batchSize: Recorder
    /// Each broker message's publish and confirm (and, when it fails, telling the senders): `make
    /// bench` prints the batches and their time.
    private let publishTime: Timer
    @usableFromInline let refused: Counter

    /// - Parameters:
    ///   - capacity: events that may wait at once; past it `submit` refuses (the broker is away).
    public init(
        publisher: EventPublisher, producer: String, window: Duration = .milliseconds(1), maxBatch: Int = 256, capacity: Int = 20_000,
        logger: Logger, onFailure: @escaping FailureHandler
    ) {
        self.publisher = publisher
        self.producer = producer
        self.window = window
        self.maxBatch = max(1, maxBatch)
        self.logger = logger
        self.onFailure = onFailure
        self.queue = BatchQueue(capacity: capacity)
        batchSize = Recorder(label: "swiftchat_bus_batched_events", dimensions: [("type", Payload.eventType)], aggregate: true)
        publishTime = Timer(label: "swiftchat_bus_batcher_seconds", dimensions: [("type", Payload.eventType)])
        refused = Counter(label: "swiftchat_bus_batcher_refused_total", dimensions: [("type", Payload.eventType)])
    }

    /// Queues one event; false (nothing queued) when `capacity` events are already waiting.
    /// Inlinable, as `BatchQueue.append` is: it is called once per send.
    @inlinable
    public func submit(_ payload: Payload) -> Bool {
        let accepted = queue.append(payload)
        if !accepted { refused.increment() }
        return accepted
    }

    public func run() async throws {
        await queue.run(window: window, interval: publisher.batchInterval, maxBatch: maxBatch) { batch in await publish(batch) }
    }

    private func publish(_ batch: [Payload]) async {
        batchSize.record(batch.count)
        let started = ContinuousClock.now
        defer { publishTime.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
        do {
            let outcome = try await publisher.publish([OutgoingMessage(EventBatchEnvelope(producer: producer, payloads: batch))]).first
            if outcome != .confirmed {
                await onFailure(batch, outcome == .unroutable ? "no queue is bound for \(Payload.eventType)" : "the broker refused the batch")
            }
        } catch {
            logger.warning("could not publish a batch", metadata: ["type": "\(Payload.eventType)", "error": "\(error)"])
            await onFailure(batch, "\(error)")
        }
    }
}
