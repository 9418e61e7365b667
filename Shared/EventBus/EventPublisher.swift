import BlockingExecutor
import EventContracts
import Logging
import Metrics

/// Publishes with publisher confirms and `mandatory`, reconnecting by itself.
///
/// `publish` returns only when the broker has confirmed (or returned, or nacked) every message:
/// a `.confirmed` outcome means the message is durably the broker's. When the connection breaks,
/// the unconfirmed messages are sent again on a new connection until `publishTimeout`, so a
/// message may reach a queue twice; consumers deduplicate by event id (the public contract).
public actor EventPublisher {
    private let configuration: AMQPConfiguration
    private let topology: Topology
    private let logger: Logger
    private var connection: AMQPConnection?
    private let confirmed = Counter(label: "swiftchat_bus_published_total", dimensions: [("outcome", "confirmed")])
    private let unroutable = Counter(label: "swiftchat_bus_published_total", dimensions: [("outcome", "unroutable")])
    private let reconnects = Counter(label: "swiftchat_bus_reconnects_total", dimensions: [("role", "publisher")])
    /// Publishes that arrived while a batch was in flight; the next batch takes them all.
    private var waiting: [(messages: [OutgoingMessage], continuation: CheckedContinuation<[PublishOutcome], any Error>)] = []
    private var flushing = false
    private static let maxBatch = 1_000

    public init(configuration: AMQPConfiguration, topology: Topology = Topology(), logger: Logger) {
        self.configuration = configuration
        self.topology = topology
        self.logger = logger
    }

    /// How far apart the stages that publish through it start their batches (`BatchPacing`).
    public nonisolated var batchInterval: Duration { configuration.batchInterval }

    /// Publishes a batch; the outcomes are in the order of `messages`.
    /// Throws `.publishTimeout` when the broker stayed unreachable for `publishTimeout`.
    ///
    /// Concurrent callers share confirm round trips: while one batch waits for its confirms, new
    /// publishes queue up, and the next batch carries all of them (each caller's messages stay in
    /// order and contiguous). One connection then confirms thousands of messages a second instead
    /// of one per round trip.
    public func publish(_ messages: [OutgoingMessage]) async throws -> [PublishOutcome] {
        guard !messages.isEmpty else { return [] }
        if flushing {
            return try await withCheckedThrowingContinuation { continuation in
                waiting.append((messages, continuation))
            }
        }
        flushing = true
        defer { flushing = false }
        var mine: Result<[PublishOutcome], any Error> = .success([])
        var batch: [(messages: [OutgoingMessage], continuation: CheckedContinuation<[PublishOutcome], any Error>?)] = [(messages, nil)]
        while !batch.isEmpty {
            let result: Result<[PublishOutcome], any Error>
            do {
                result = .success(try await publishNow(batch.flatMap(\.messages)))
            } catch {
                result = .failure(error)
            }
            var offset = 0
            for (messages, continuation) in batch {
                let share = result.map { Array($0[offset..<(offset + messages.count)]) }
                offset += messages.count
                if let continuation { continuation.resume(with: share) } else { mine = share }
            }
            batch = takeWaiting()
        }
        return try mine.get()
    }

    /// The next batch: queued publishes, whole, up to `maxBatch` messages (at least one publish).
    private func takeWaiting() -> [(messages: [OutgoingMessage], continuation: CheckedContinuation<[PublishOutcome], any Error>?)] {
        var end = 0
        var count = 0
        while end < waiting.count, end == 0 || count + waiting[end].messages.count <= Self.maxBatch {
            count += waiting[end].messages.count
            end += 1
        }
        let taken = waiting[..<end].map { (messages: $0.messages, continuation: Optional($0.continuation)) }
        waiting.removeFirst(end)
        return taken
    }

    /// One batch, reconnecting and resending until confirmed or `publishTimeout` passes.
    private func publishNow(_ messages: [OutgoingMessage]) async throws -> [PublishOutcome] {
        let deadline = ContinuousClock.now + configuration.publishTimeout
        var backoff = Backoff()
        var lastError = "broker unreachable"
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            switch await attempt(messages, deadline: deadline) {
            case .success(let outcomes):
                return outcomes
            case .failure(let error):
                lastError = error.description
                logger.warning("publish failed, reconnecting", metadata: ["error": "\(error)"])
                await drop()
                try await LoopTimer.sleep(for: min(backoff.next(), ContinuousClock.now.duration(to: deadline)))
            }
        }
        throw EventBusError(.publishTimeout, "no confirm within \(configuration.publishTimeout): \(lastError)")
    }

    private func attempt(_ messages: [OutgoingMessage], deadline: ContinuousClock.Instant) async -> Result<[PublishOutcome], EventBusError> {
        do {
            let connection = try await connected()
            let remaining = ContinuousClock.now.duration(to: deadline)
            let outcomes = try await connection.publish(messages, confirmTimeout: min(remaining, .seconds(5)))
            for outcome in outcomes {
                switch outcome {
                case .confirmed: confirmed.increment()
                case .unroutable: unroutable.increment()
                case .nacked: break
                }
            }
            return .success(outcomes)
        } catch {
            return .failure(error)
        }
    }

    /// Publishes one message; `.unroutable` and `.nacked` are errors here.
    public func publish(_ message: OutgoingMessage) async throws {
        let outcome = try await publish([message]).first
        switch outcome {
        case .confirmed: return
        case .unroutable: throw EventBusError(.protocolError, "unroutable: no queue is bound for \(message.exchange)/\(message.routingKey)")
        case .nacked, nil: throw EventBusError(.nacked, "the broker refused \(message.messageId)")
        }
    }

    /// Publishes one event envelope.
    public func publish<Payload: EventPayload>(_ envelope: EventEnvelope<Payload>) async throws {
        try await publish(OutgoingMessage(envelope))
    }

    /// Closes the connection and its thread.
    public func shutdown() async {
        if let connection {
            self.connection = nil
            await connection.shutdown()
        }
    }

    private func connected() async throws(EventBusError) -> AMQPConnection {
        if let connection, await connection.isOpen { return connection }
        let fresh = connection ?? AMQPConnection(configuration: configuration, heartbeats: false)
        do {
            try await fresh.open()
            try await fresh.declare(topology)
            try await fresh.enableConfirms()
        } catch {
            await fresh.close()
            connection = fresh
            throw error
        }
        if connection != nil { reconnects.increment() }
        connection = fresh
        logger.debug("publisher connected", metadata: ["host": "\(configuration.host):\(configuration.port)"])
        return fresh
    }

    private func drop() async {
        await connection?.close()
    }
}
