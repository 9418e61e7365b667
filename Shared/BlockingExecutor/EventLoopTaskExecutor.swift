import NIOCore

/// A NIO event loop as a Swift `TaskExecutor`.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) runs its nonisolated async
/// code, and the default actors it calls, on the event loop's thread. When the same loop carries
/// the task's Postgres connections, a query's write and the resumption after its reply happen on
/// that one thread: no hop to the cooperative pool and back (two thread wake-ups) per round trip.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
