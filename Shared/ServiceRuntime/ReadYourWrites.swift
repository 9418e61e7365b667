import BlockingExecutor

/// Read your own writes across services (the public contract): an id another service has just returned
/// (a new user, say) reaches this service with an event that may still be on its way. A request
/// naming it waits for it, bounded, before answering 404.
public enum ReadYourWrites {
    /// How long a request waits for an id it does not know yet.
    public static let patience: Duration = .seconds(5)

    /// Calls `arrived` until it says true or `patience` has passed; returns its last answer.
    public static func wait(_ arrived: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + patience
        var pause = Duration.milliseconds(25)
        while true {
            if try await arrived() { return true }
            guard ContinuousClock.now + pause < deadline else { return try await arrived() }
            try await LoopTimer.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(250))
        }
    }
}
