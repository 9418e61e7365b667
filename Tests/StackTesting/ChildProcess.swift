import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A short-lived child process (the stack script), started with `posix_spawn` and reaped by
/// polling `waitpid(WNOHANG)`. Foundation's `Process` once missed such a child's exit on Linux
/// (its SIGCHLD watch): the script had exited, a zombie, and the test waited for it forever.
/// Polling cannot miss an exit, and nothing blocks a thread while it waits.
struct ChildProcess: Sendable {
    let pid: pid_t

    /// Starts `executable` with the current environment; stdin is /dev/null, stdout and stderr
    /// are inherited. Its signals are unblocked and handled by default: a child inherits the
    /// spawning thread's mask, and the test process's threads block nearly every signal, so a
    /// broker a fault test restarted ignored `stack.sh stop`'s SIGTERM until it was killed 60 s later.
    static func spawn(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { environment.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &fileActions, &attributes, argv, environment)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child to exit; its exit status, or 128 + the signal that ended it.
    func exitStatus() async -> Int32 {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result == -1 && errno != EINTR { return -1 }
            if Task.isCancelled {
                // Still reap it, so no zombie is left behind.
                _ = waitpid(pid, &status, 0)
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
