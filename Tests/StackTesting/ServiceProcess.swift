import Foundation

#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A SwiftChat service binary run as its own process, so a test can SIGKILL it as a crash would.
public final class ServiceProcess: @unchecked Sendable {
    // Safety: `process` is only touched by the test's own task (start, kill, stop are called
    // sequentially by one test); Foundation's Process is thread-safe for those calls.
    private var process: Process?
    public let name: String
    public let port: Int
    private let environment: [String: String]
    private let log: URL

    /// `name` is the executable product (`messages`, `socket-handler`…), built by `swift build`.
    public init(name: String, port: Int, environment: [String: String]) {
        self.name = name
        self.port = port
        self.environment = environment
        self.log = TestStack.stackDirectory.appendingPathComponent("log/test-\(name)-\(port).log")
    }

    /// Starts the process and waits until `/healthz` answers.
    public func start() async throws {
        let binary = TestStack.root.appendingPathComponent(".build/debug/\(name)")
        let process = Process()
        process.executableURL = binary
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
            .merging(["HTTP_PORT": String(port), "LOG_LEVEL": "warning"]) { _, new in new }
        try FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        let ready = await eventually(timeout: .seconds(60), every: .milliseconds(100)) { await self.healthy() }
        guard ready else { throw TestStack.ScriptError(arguments: [name, "did not become healthy; see \(log.path)"], status: -1) }
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// SIGKILL: no graceful shutdown, no flushing, as a crash.
    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        reap(process)
    }

    /// SIGTERM and wait.
    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        reap(process)
    }

    /// Waits for the exit with `waitpid` rather than `waitUntilExit`, which relies on Foundation
    /// noticing SIGCHLD and has missed it (see ChildProcess). If Foundation reaped it first,
    /// `waitpid` returns at once. It blocks this thread for the shutdown's length: fine in a test.
    private func reap(_ process: Process) {
        var status: Int32 = 0
        while waitpid(process.processIdentifier, &status, 0) == -1 && errno == EINTR {}
    }

    private func healthy() async -> Bool {
        guard let url = URL(string: "http://127.0.0.1:\(port)/healthz") else { return false }
        return await withCheckedContinuation { continuation in
            let task = URLSession.shared.dataTask(with: url) { _, response, _ in
                continuation.resume(returning: (response as? HTTPURLResponse)?.statusCode == 200)
            }
            task.resume()
        }
    }
}
