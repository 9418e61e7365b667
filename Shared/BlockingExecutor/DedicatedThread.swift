import NIOCore
import NIOPosix

/// One OS thread of its own, for a blocking, non-thread-safe C connection (librabbitmq, hiredis).
///
/// An actor that owns such a connection returns `thread.unownedExecutor` as its executor: every
/// method of that actor then runs on this thread, so blocking C calls never occupy the Swift
/// cooperative pool or an HTTP event loop, and the C object is only ever touched by one thread.
public final class DedicatedThread: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let eventLoop: any EventLoop

    public init() {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.eventLoop = group.next()
    }

    /// The executor to return from an actor's `unownedExecutor`.
    public var unownedExecutor: UnownedSerialExecutor {
        eventLoop.executor.asUnownedSerialExecutor()
    }

    /// Ends the thread. Call once, after the owning actor's last use, from outside the thread.
    public func shutdown() async {
        try? await group.shutdownGracefully()
    }

    deinit {
        // A thread that was never shut down explicitly must not leak: the group's own deinit
        // does not stop its threads.
        group.shutdownGracefully { _ in }
    }
}
