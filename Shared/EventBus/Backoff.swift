/// Exponential backoff with jitter, for reconnect loops.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private var current: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(2)) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    /// The next delay (between half and all of the current step), then doubles the step.
    public mutating func next() -> Duration {
        let step = current
        current = min(maximum, current * 2)
        let fraction = Double.random(in: 0.5...1.0)
        return step * fraction
    }

    public mutating func reset() {
        current = initial
    }
}
