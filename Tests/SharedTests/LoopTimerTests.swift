import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import BlockingExecutor

/// A service's sleeps (paced batches, every batch's deadline) wait on its event loop's timer, not
/// on Dispatch's timer thread, and end early only by cancellation.
@Suite("Sleeps on the event loop's timer")
struct LoopTimerTests {
    @Test(
        "a sleep ends when the loop's clock passes its end, never before: an hour on a testing loop's clock, not the wall's",
        .timeLimit(.minutes(1))
    )
    func sleepsOnTheLoopsClock() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let start = loop.now
        let ended = Recorder<NIODeadline>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await LoopTimer.$loop.withValue(loop) { try await LoopTimer.sleep(for: .seconds(3_600)) }
                ended.append(loop.now)
            }
            // The loop's clock moves only when told to: a minute at a time, until the sleep is
            // over. A sleep on Dispatch's timers would last an hour: the time limit cancels the
            // test, and the cancelled sleep fails it.
            while ended.count == 0, !Task.isCancelled {
                await loop.advanceTime(by: .minutes(1))
                await Task.yield()
            }
            try await group.waitForAll()
        }
        let wokeAt = try #require(ended.all.first)
        #expect(wokeAt - start >= .hours(1))
        await loop.shutdownGracefully()
    }

    @Test("a sleep cancelled while it waits on the loop's timer ends at once with CancellationError, as Task.sleep's does")
    func cancelledSleepEnds() async throws {
        let loop = NIOAsyncTestingEventLoop()
        // A testing loop runs what it is given on one queue, in order: the sleeper's first turn,
        // queued as the task is made, waits on the timer before the cancel queued after it runs.
        let sleeper = Task(executorPreference: EventLoopTaskExecutor(loop)) {
            try await LoopTimer.$loop.withValue(loop) { try await LoopTimer.sleep(for: .seconds(3_600)) }
        }
        loop.execute { sleeper.cancel() }
        // Past the hour: a sleep the cancel did not end would end now, without an error.
        await loop.advanceTime(by: .hours(2))
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        await loop.shutdownGracefully()
    }

    @Test("under a loop's preference, code and its child tasks run on the loop and resume there after their sleeps")
    func preferenceRunsAndSleepsOnTheLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let observed = try await LoopTimer.withPreference(EventLoopTaskExecutor(loop)) {
            var onLoop = [loop.inEventLoop]
            try await LoopTimer.sleep(for: .milliseconds(5))
            onLoop.append(loop.inEventLoop)
            async let child: Bool = {
                try await LoopTimer.sleep(for: .milliseconds(5))
                return loop.inEventLoop && LoopTimer.loop === loop
            }()
            onLoop.append(try await child)
            return onLoop
        }
        #expect(observed == [true, true, true])
        #expect(LoopTimer.loop == nil)
    }
}
