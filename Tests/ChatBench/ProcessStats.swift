import Foundation

/// CPU time and resident memory of the processes a benchmark watches, from /proc.
struct WatchedProcess: Sendable {
    let name: String
    let pid: Int32
    /// Count the process's children too (Postgres: one backend per connection).
    let withChildren: Bool
}

enum ProcessStats {
    /// CPU seconds used so far by `process` (and its children, when asked).
    static func cpuSeconds(of process: WatchedProcess) -> Double { cpuSeconds(pids: pids(of: process)) }

    /// Resident memory in MiB of `process` (and its children, when asked).
    static func residentMiB(of process: WatchedProcess) -> Double { residentMiB(pids: pids(of: process)) }

    private static func cpuSeconds(pids: [Int32]) -> Double { pids.reduce(0) { $0 + cpuSeconds(pid: $1) } }

    private static func residentMiB(pids: [Int32]) -> Double { pids.reduce(0) { $0 + residentKiB(pid: $1) } / 1024 }

    static func residentKiB(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib
    }

    /// CPU (and the kernel's part of it), wait for a core and RSS of `process` (and its children,
    /// when asked), from one look for its processes.
    static func sample(of process: WatchedProcess) -> ProcessSample {
        let pids = pids(of: process)
        var cpu: [Int32: CPUTimes] = [:]
        for pid in pids { cpu[pid] = cpuTimes(pid: pid) }
        return ProcessSample(
            cpu: cpu, reaped: process.withChildren ? reapedChildrenTimes(pid: process.pid) : CPUTimes(), waits: waits(pids: pids),
            residentMiB: residentMiB(pids: pids))
    }

    /// How long each thread of `pids` has waited for a core while ready to run, and how many times
    /// it was put on one, by thread id.
    private static func waits(pids: [Int32]) -> [Int32: CoreWaits] {
        var waits: [Int32: CoreWaits] = [:]
        for pid in pids {
            for thread in ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap(Int32.init) {
                // /proc/<pid>/task/<tid>/schedstat: nanoseconds on a core, nanoseconds waiting, runs.
                guard let line = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/schedstat", encoding: .utf8) else { continue }
                let fields = line.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if fields.count == 3 { waits[thread] = CoreWaits(waiting: fields[1] / 1e9, runs: fields[2]) }
            }
        }
        return waits
    }

    static func cpuSeconds(pid: Int32) -> Double { cpuTimes(pid: pid).total }

    /// CPU seconds of one process so far, in all and in the kernel (its system calls, and the
    /// scheduler switching its threads), from /proc/<pid>/stat.
    private static func cpuTimes(pid: Int32) -> CPUTimes { cpuTimes(pid: pid, userField: 11) }

    /// CPU seconds of the children `pid` has waited for after they ended (a Postgres backend that
    /// closed is counted here, in its postmaster).
    private static func reapedChildrenTimes(pid: Int32) -> CPUTimes { cpuTimes(pid: pid, userField: 13) }

    /// User and system ticks at `userField` and the field after it in /proc/<pid>/stat, in seconds.
    private static func cpuTimes(pid: Int32, userField: Int) -> CPUTimes {
        guard let fields = statFields(pid: pid), fields.count > userField + 1, let user = Double(fields[userField]),
            let system = Double(fields[userField + 1])
        else { return CPUTimes() }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        return CPUTimes(total: (user + system) / tick, kernel: system / tick)
    }

    private static func pids(of process: WatchedProcess) -> [Int32] {
        guard process.withChildren else { return [process.pid] }
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard let fields = statFields(pid: pid), fields.count > 1 else { return false }
            return Int32(fields[1]) == process.pid
        }
        return [process.pid] + children
    }

    /// The fields of /proc/<pid>/stat after the command name (state is field 0, ppid field 1).
    private static func statFields(pid: Int32) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }
}

extension ProcessStats {
    /// Waits until the watched processes (the load generator aside) use under a quarter of a core
    /// together over a second, at most `limit`; returns how long that took. The setup's own work
    /// (a thousand sign-ups, a thousand sockets coming online) must not be measured as the load's.
    static func settle(_ processes: [WatchedProcess], limit: Duration = .seconds(60)) async -> Duration {
        let services = processes.filter { $0.pid != getpid() }
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            let before = services.reduce(0) { $0 + cpuSeconds(of: $1) }
            try? await Task.sleep(for: .seconds(1))
            if services.reduce(0, { $0 + cpuSeconds(of: $1) }) - before < 0.25 { break }
        }
        return ContinuousClock.now - started
    }
}

/// Counts a process or thread only adds to while it lives (CPU time, waits, runs), read twice to
/// tell what a phase added.
protocol RunningTotals {
    init()
    static func + (left: Self, right: Self) -> Self
    /// What was added since `earlier`; nil when a count went down (the id is another's now).
    func added(since earlier: Self) -> Self?
}

extension Dictionary where Value: RunningTotals {
    /// What the ids here added since `before`: one that is new (or reused) counts from its start,
    /// one that has ended since is no longer counted.
    func added(since before: Self) -> Value {
        reduce(Value()) { total, entry in total + (before[entry.key].flatMap(entry.value.added(since:)) ?? entry.value) }
    }
}

/// CPU seconds, in all and in the kernel.
struct CPUTimes: RunningTotals {
    var total = 0.0
    var kernel = 0.0

    static func + (left: CPUTimes, right: CPUTimes) -> CPUTimes {
        CPUTimes(total: left.total + right.total, kernel: left.kernel + right.kernel)
    }

    func added(since earlier: CPUTimes) -> CPUTimes? {
        earlier.total <= total ? CPUTimes(total: total - earlier.total, kernel: kernel - earlier.kernel) : nil
    }

    /// µs of CPU for each of `delivered` messages.
    func microseconds(per delivered: Int) -> Double { total * 1e6 / Double(max(delivered, 1)) }
}

/// What `ProcessStats.sample` read of a process at one moment.
struct ProcessSample {
    /// CPU so far of each of its processes, by process id.
    let cpu: [Int32: CPUTimes]
    /// CPU of its children that ended and were waited for (counted once they end).
    let reaped: CPUTimes
    let waits: [Int32: CoreWaits]
    let residentMiB: Double

    /// CPU used since `before`, per process: one that started since counts from its start, one that
    /// ended counts through `reaped`; neither takes what it used before out of the sum.
    func cpu(since before: ProcessSample) -> CPUTimes {
        cpu.added(since: before.cpu) + (reaped.added(since: before.reaped) ?? CPUTimes())
    }
}

/// Seconds a process's threads spent ready to run but waiting for a core (the scheduler's run
/// queue), and how many times they got one: on a busy machine each hand-off between threads
/// waits there, and that wait is part of every message's latency.
struct CoreWaits: RunningTotals {
    var waiting = 0.0
    var runs = 0.0

    static func + (left: CoreWaits, right: CoreWaits) -> CoreWaits {
        CoreWaits(waiting: left.waiting + right.waiting, runs: left.runs + right.runs)
    }

    func added(since earlier: CoreWaits) -> CoreWaits? {
        earlier.runs <= runs && earlier.waiting <= waiting ? CoreWaits(waiting: waiting - earlier.waiting, runs: runs - earlier.runs) : nil
    }
}

/// The whole machine's CPU time so far, in clock ticks, from the first line of /proc/stat: what
/// ran, what sat idle waiting for the disk, and what the hypervisor took (steal). A noisy p99 is
/// read against these: a run whose cores were partly taken or waiting is not the code's figure.
struct MachineTimes {
    var busy = 0.0
    var ioWait = 0.0
    var steal = 0.0
    var total = 0.0

    static func now() -> MachineTimes {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first else {
            return MachineTimes()
        }
        // user nice system idle iowait irq softirq steal (guest time is inside user already)
        let ticks = line.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
        guard ticks.count == 8 else { return MachineTimes() }
        return MachineTimes(busy: ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6], ioWait: ticks[4], steal: ticks[7], total: ticks.reduce(0, +))
    }
}

/// CPU used by each watched process over one phase, and by the machine as a whole.
struct CPUWindow {
    let processes: [WatchedProcess]
    private let start = ContinuousClock.now
    private let before: [ProcessSample]
    private let machineBefore = MachineTimes.now()

    init(_ processes: [WatchedProcess]) {
        self.processes = processes
        self.before = processes.map(ProcessStats.sample(of:))
    }

    /// One row per process: CPU share of one core over the window, CPU microseconds per delivered
    /// message, the kernel's part of that CPU, RSS now, how long its threads waited for a core (as
    /// a share of one core: 100% is one thread always waiting) and for how long each time, and how
    /// often a thread of it was put on a core (each wake-up, so each hand-off between threads, is
    /// one, and so is each return from being preempted); then the total. Returns the total's CPU µs
    /// per message and the machine's busy and steal shares.
    @discardableResult
    func report(delivered: Int) -> (cpuPerMessage: Double, busy: Double, steal: Double) {
        let wall = (ContinuousClock.now - start).seconds
        var total = CPUTimes()
        var totalWaits = CoreWaits()
        print(
            "process             CPU %core   CPU µs/msg   kernel %   RSS MiB   waiting for a core %   µs waited a run   runs/s")
        for (process, before) in zip(processes, before) {
            let now = ProcessStats.sample(of: process)
            let used = now.cpu(since: before)
            let waits = now.waits.added(since: before.waits)
            total = total + used
            totalWaits = totalWaits + waits
            print(row(process.name, used, waits, wall: wall, delivered: delivered, rss: now.residentMiB))
        }
        print(row("all together", total, totalWaits, wall: wall, delivered: delivered, rss: nil))
        let machine = MachineTimes.now()
        let ticks = max(machine.total - machineBefore.total, 1)
        let busy = 100 * (machine.busy - machineBefore.busy) / ticks
        let steal = 100 * (machine.steal - machineBefore.steal) / ticks
        print(
            String(
                format: "machine, all cores: busy %.1f%%, waiting on the disk %.1f%%, taken by the hypervisor (steal) %.1f%%",
                busy, 100 * (machine.ioWait - machineBefore.ioWait) / ticks, steal))
        return (total.microseconds(per: delivered), busy, steal)
    }

    private func row(_ name: String, _ used: CPUTimes, _ waits: CoreWaits, wall: Double, delivered: Int, rss: Double?) -> String {
        let wall = max(wall, 0.001)
        // A process that used (next to) nothing has no kernel share worth giving.
        let kernel = used.total > 0.01 ? String(format: "%10.1f", min(100, max(0, 100 * used.kernel / used.total))) : "         -"
        return name.padding(toLength: 18, withPad: " ", startingAt: 0)
            + String(
                format: "%10.1f %12.1f %@   %@ %22.1f %17.1f %8.0f", 100 * used.total / wall, used.microseconds(per: delivered), kernel,
                rss.map { String(format: "%7.1f", $0) } ?? "      -", 100 * waits.waiting / wall, waits.waiting * 1e6 / max(waits.runs, 1),
                waits.runs / wall)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Fractional, for latencies; not `milliseconds`, which `ServiceConfig` has as whole ones.
    var inMilliseconds: Double { seconds * 1000 }
}
