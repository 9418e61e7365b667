import BlockingExecutor
import ServiceLifecycle
import Synchronization

/// Work from many callers, taken by one loop a batch at a time: `append` never waits, and `run`
/// hands the consumer whatever arrived meanwhile, up to `maxBatch` items in order, in turns. A turn
/// begins when items arrive: it waits `window` for company, then until `interval` has passed since
/// the previous turn began, and hands over batches until the queue is empty. So what arrives while a
/// batch is handled follows at once, in the same turn: under steady load the handler's own round
/// trip (for the send batchers and the relay's hand-offs, a publish and its confirm) spaces the
/// batches, and pacing each of them as well made `make bench`'s latency worse and saved no CPU (see
/// the README's Benchmark). A wake-up left behind by items a turn already took begins a turn that
/// finds nothing, and the next item waits for the interval after it: skipping such turns was
/// measured too, and was no better. On graceful shutdown it hands over what is left, then returns.
///
/// `append` is inlinable, so a caller in another module gets a copy made for its own item type: a
/// send is queued once per message, and unspecialized, the generic code looked up the metadata of
/// its types (the array, the lock) in the runtime's caches on every call.
public final class BatchQueue<Item: Sendable>: Sendable {
    @usableFromInline let items = Mutex<[Item]>([])
    @usableFromInline let capacity: Int
    private let wakeups: AsyncStream<Void>
    @usableFromInline let wake: AsyncStream<Void>.Continuation

    /// `capacity` items may wait at once; past it `append` refuses.
    public init(capacity: Int) {
        self.capacity = capacity
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an item; false (nothing queued) when `capacity` items are waiting already.
    @inlinable
    public func append(_ item: Item) -> Bool {
        append(contentsOf: CollectionOfOne(item)) == 1
    }

    /// Queues items in order, as many as fit under `capacity` (one lock, one wake-up); returns how
    /// many were queued.
    @inlinable @discardableResult
    public func append(contentsOf newItems: some Collection<Item>) -> Int {
        let accepted = items.withLock { items in
            let room = min(newItems.count, max(0, capacity - items.count))
            items.append(contentsOf: newItems.prefix(room))
            return room
        }
        if accepted > 0 { wake.yield() }
        return accepted
    }

    /// Calls `handle` with each batch until graceful shutdown, and once more with what is left.
    public func run(window: Duration, interval: Duration = .zero, maxBatch: Int, _ handle: ([Item]) async -> Void) async {
        var pacing = BatchPacing(interval: interval)
        for await _ in wakeups.cancelOnGracefulShutdown() {
            if window > .zero { try? await LoopTimer.sleep(for: window) }
            await pacing.waitForTurn()
            pacing.started()
            await drain(maxBatch: maxBatch, handle)
        }
        await drain(maxBatch: maxBatch, handle)
    }

    /// Calls `handle` with what is queued now, a batch at a time (as `run` does once more when it
    /// ends): for what was queued after `run` returned.
    public func drain(maxBatch: Int, _ handle: ([Item]) async -> Void) async {
        while true {
            let batch = items.withLock { items -> [Item] in
                let count = min(items.count, max(1, maxBatch))
                defer { items.removeFirst(count) }
                return Array(items.prefix(count))
            }
            guard !batch.isEmpty else { return }
            await handle(batch)
        }
    }
}
