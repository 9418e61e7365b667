import Synchronization

/// Whether an instance's own queues are consuming; each consumer reports once it is. Before
/// that, frames for a socket it accepted could not reach it, so it accepts none.
public final class InstanceReadiness: Sendable {
    private let consuming = Mutex<Set<String>>([])
    private let required: Set<String>

    public init(required: Set<String>) {
        self.required = required
    }

    public var isReady: Bool { consuming.withLock { $0.isSuperset(of: required) } }

    public func markConsuming(_ queue: String) {
        _ = consuming.withLock { $0.insert(queue) }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last = ContinuousClock.now

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    mutating func take() -> Bool {
        let now = ContinuousClock.now
        let elapsed = now - last
        last = now
        tokens = min(burst, tokens + rate * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Milliseconds until the next token (after a refused `take`).
    var millisecondsToNext: Int { max(1, Int(((1 - tokens) / rate * 1000).rounded(.up))) }
}
