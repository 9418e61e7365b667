import Allocator
import CJemalloc
import Glibc
import Testing

/// The services' allocator (`Allocator`, jemalloc): linked so that it, not glibc, serves `malloc`
/// in the process, and returning free pages when asked (`MemoryTrim` after a burst of sockets).
/// This test process links it the way every service does, through the shared modules.
@Suite("Allocator")
struct AllocatorTests {
    @Test("jemalloc serves malloc in a process that links the shared modules, and says its version")
    func jemallocServesMalloc() throws {
        #expect(Allocator.version.hasPrefix("5."))
        let before = try read("thread.allocated", as: UInt64.self)
        let block = try #require(malloc(1 << 20))
        let after = try read("thread.allocated", as: UInt64.self)
        free(block)
        // jemalloc counts what this thread allocated through it; glibc's malloc would leave the
        // count where it was.
        #expect(after - before >= 1 << 20)
    }

    @Test("free pages go back to the system when asked, not only as time passes")
    func returnsFreePages() throws {
        let size = 1 << 20
        let blocks = try (0..<128).map { _ in try #require(malloc(size)) }
        for block in blocks { memset(block, 1, size) }
        for block in blocks { free(block) }
        // 128 MiB freed (32,768 pages of 4 KiB): jemalloc keeps much of it for reuse, returning it
        // gradually as time passes (how much is left at this moment varies).
        let held = try dirtyPages()
        #expect(held >= 2_048)
        Allocator.returnFreePages()
        // Other tests may free memory meanwhile, but not an eighth of that in these few
        // microseconds.
        #expect(try dirtyPages() < held / 8)
    }

    private func read<Value: FixedWidthInteger>(_ name: String, as type: Value.Type) throws -> Value {
        var value = Value.zero
        var size = MemoryLayout<Value>.size
        try #require(mallctl(name, &value, &size, nil, 0) == 0, "mallctl(\(name))")
        return value
    }

    /// Pages freed and not yet returned, over all arenas, from a fresh snapshot of the statistics
    /// (a new epoch).
    private func dirtyPages() throws -> Int {
        var epoch: UInt64 = 1
        try #require(mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size) == 0)
        return try read("stats.arenas.\(Allocator.allArenas).pdirty", as: Int.self)
    }
}
