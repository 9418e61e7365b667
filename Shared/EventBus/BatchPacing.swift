import BlockingExecutor

/// Keeps one stage's batches at least `interval` apart, start to start: a consumer's batches, and a
/// batch queue's first batch after each wake-up (a batcher's broker messages, a relay's hand-offs:
/// see `BatchQueue`).
///
/// Every batch costs each process on its path a wake-up, a round trip and a confirm, whatever its
/// size. A stage that starts its next batch as soon as the last is done makes batches as small as
/// the cores let it, and so keeps the cores busy at any rate: with the stages unpaced, the stack
/// kept both cores about 90% busy at 1,000 msg/s as at 5,000. Paced, what arrives meanwhile goes
/// in the next batch. A batch after a quiet spell starts at once: pacing only spaces them out.
public struct BatchPacing: Sendable {
    public let interval: Duration
    private var earliest = ContinuousClock.now

    /// `interval` zero: no pacing, the next batch may start at once.
    public init(interval: Duration) {
        self.interval = interval
    }

    /// Waits until the next batch may start.
    public func waitForTurn() async {
        guard interval > .zero, earliest > .now else { return }
        try? await LoopTimer.sleep(until: earliest)
    }

    /// A batch started now.
    public mutating func started() {
        if interval > .zero { earliest = .now + interval }
    }
}
