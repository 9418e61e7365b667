/// `work` did not finish within its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let operation: String
    public let limit: Duration

    public var description: String { "\(operation) did not finish within \(limit)" }
}

/// Runs `work`, cancelling it when `limit` passes first, and then throws `DeadlineExceeded`.
///
/// The clients `work` uses end their waits on cancellation (PostgresNIO closes the connection of a
/// cancelled query; the bus and Redis connections time out by themselves), so one await that would
/// never resume (a server killed mid-round, a half-open socket) ends as an error the caller retries.
public func withDeadline<Result: Sendable>(
    _ limit: Duration,
    _ operation: String,
    _ work: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await LoopTimer.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw DeadlineExceeded(operation: operation, limit: limit)
        }
        return result
    }
}
