import BlockingExecutor
import NIOPosix
import PostgresNIO

extension PostgresClient {
    /// Runs `body` with this client's pool running beside it, and stops the pool when `body` ends:
    /// for a client made for one piece of work (migrations, a test). A long-lived client is a
    /// `Service` in the service group instead.
    ///
    /// `body` starts only once the pool's task is inside `run()`. A connection leased before that
    /// still works (it waits for the pool), but PostgresNIO logs a warning for it, which would open
    /// every service's log at start-up.
    @discardableResult @concurrent
    public func whileRunning<Result: Sendable>(_ body: (PostgresClient) async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // One event loop runs both the pool's task and this wait, one job after the other: the
            // pool's task resumes the wait and goes on into `run()`, which marks the client running
            // as its first step (PostgresNIO 1.33), before it can suspend; only then does the loop
            // run the resumed wait. (`@concurrent`: this wait must not run on a caller's actor.)
            await withTaskExecutorPreference(Self.startingLoop) {
                await withCheckedContinuation { (started: CheckedContinuation<Void, Never>) in
                    group.addTask {
                        started.resume()
                        await self.run()
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body(self)
        }
    }

    /// A task's executor preference does not keep its executor alive, and the pool's task keeps
    /// the preference as long as it runs: this one lives as long as the process.
    private static let startingLoop = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.any())
}
