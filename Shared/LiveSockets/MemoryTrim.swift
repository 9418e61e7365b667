import Allocator
import NIOPosix

/// Gives the memory a burst of upgrades used back to the system. Thousands of sockets opening at
/// once (a reconnect storm after a restart) each hold their handshake's state for a moment; once
/// freed, the allocator keeps those pages for a while, and an instance that goes quiet after the
/// storm would stay that large. `Allocator.returnFreePages` returns them (it walks the arenas, so
/// it runs on NIO's thread pool, and only after a burst).
enum MemoryTrim {
    /// Decides when to trim: after at least `burst` sockets joined or left, once a second passes
    /// with none doing so.
    struct Churn {
        var burst = 1000
        private var lastTrimmed = 0
        private var lastSeen = 0

        init() {}

        /// `changes`: the registry's running count of joins and leaves, read once a second.
        mutating func settled(at changes: Int) -> Bool {
            defer { lastSeen = changes }
            guard changes == lastSeen, changes - lastTrimmed >= burst else { return false }
            lastTrimmed = changes
            return true
        }
    }

    static func run() async {
        _ = try? await NIOThreadPool.singleton.runIfActive { Allocator.returnFreePages() }
    }
}
