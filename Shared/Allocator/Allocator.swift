import CJemalloc

/// The services' memory allocator: jemalloc, linked into every service through this module, so it
/// serves every allocation of the process in glibc's place. Swift allocates and frees small
/// objects for every frame and event, on several threads at once; at 5,000 msg/s the services used
/// about 6% less CPU per message with jemalloc than with glibc's allocator (socket-handler 7–9%),
/// less in 12 of 14 pairs of runs (docs/benchmark-history.md, "jemalloc as every service's
/// allocator, kept").
public enum Allocator {
    /// What allocates, as each service's `starting` line logs it: `jemalloc <version>`.
    public static var described: String { "jemalloc \(version)" }

    /// jemalloc's version, as it reports it: logged at start-up, so a log says what allocated.
    public static var version: String {
        var value: UnsafePointer<CChar>?
        var size = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &value, &size, nil, 0) == 0, let value else { return "unknown" }
        return String(cString: value)
    }

    /// Returns every arena's free pages to the system now, rather than over the next seconds as
    /// jemalloc does by itself while the process goes on allocating. It walks the arenas, so it
    /// runs off the event loops and the cooperative pool.
    public static func returnFreePages() {
        _ = mallctl("arena.\(allArenas).purge", nil, nil, nil, 0)
    }

    /// `MALLCTL_ARENAS_ALL`: the index that names every arena at once (in `mallctl` names such as
    /// `arena.<i>.purge` and `stats.arenas.<i>.pdirty`).
    public static let allArenas = 4096
}
