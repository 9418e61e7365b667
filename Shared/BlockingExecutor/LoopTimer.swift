import NIOCore

/// A service's sleeps, on the timer of the event loop its tasks prefer.
///
/// `Task.sleep` is served by Dispatch's timer thread whatever executor the task prefers: when the
/// sleep ends, that thread wakes only to hand the task to a cooperative-pool thread, which hands
/// it on to the preferred loop (three threads woken per sleep). A sleep on the loop's own timer
/// wakes that loop alone, and the task resumes on it in the same turn. Paced batches and the
/// deadline of every batch sleep about a thousand times a second at 5,000 msg/s. A sleep cut
/// short is taken off the loop's timers at once; a cut-short `Task.sleep` still fires later.
public enum LoopTimer {
    /// The loop whose timer this task's sleeps use; nil: `Task.sleep`. Child tasks inherit it.
    @TaskLocal static var loop: (any EventLoop)?

    /// Runs `body` preferring `executor` (nil: the default executor), with its sleeps on the
    /// executor's loop, which must outlive `body` (a service's is the never-closed singleton group's).
    public static func withPreference<Result: Sendable>(
        _ executor: EventLoopTaskExecutor?,
        _ body: () async throws -> Result
    ) async throws -> Result {
        try await $loop.withValue(executor?.eventLoop) {
            try await withTaskExecutorPreference(executor, operation: body)
        }
    }

    /// Sleeps for `duration`, as `Task.sleep(for:)` does: throws `CancellationError` when the task
    /// is cancelled first.
    public static func sleep(for duration: Duration) async throws {
        guard let loop else { return try await Task.sleep(for: duration) }
        try Task.checkCancellation()
        // Suspends even when there is nothing to wait for, as `Task.sleep` does, so that a loop
        // of sleeps never holds the event loop.
        guard duration > .zero else { return await Task.yield() }
        let deadline = ContinuousClock.now + duration
        let scheduled = loop.scheduleTask(in: TimeAmount(duration)) {}
        do {
            try await withTaskCancellationHandler {
                try await scheduled.futureResult.get()
            } onCancel: {
                scheduled.cancel()
            }
        } catch EventLoopError.cancelled {
            throw CancellationError()
        } catch {
            // The loop is closing and failed its timers: sleep the rest on Dispatch's.
            try await Task.sleep(until: deadline)
        }
    }

    /// Sleeps until `deadline`, as `Task.sleep(until:)` does.
    public static func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await sleep(for: ContinuousClock.now.duration(to: deadline))
    }
}
