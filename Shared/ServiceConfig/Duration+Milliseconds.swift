extension Duration {
    /// Whole milliseconds, rounded down, never negative: what C timeouts and Redis expiries take.
    public var milliseconds: Int {
        let (seconds, attoseconds) = components
        return max(0, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    /// Whole nanoseconds: what a metrics `Timer` records.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
