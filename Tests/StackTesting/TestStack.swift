import EventBus
import Foundation
import Logging
import PostgresNIO
import PostgresSupport
import RedisClient
import ServiceConfig

#if canImport(Glibc)
import Glibc
#endif

/// The real servers of the local stack, as tests use them (`make test` starts them first).
///
/// Tests never mock Postgres, Redis or RabbitMQ; fault-injection tests stop, kill and restart them
/// through `infra/stack.sh`, the same script `make run` uses.
public enum TestStack {
    public enum Component: String, Sendable {
        case postgres, redis, rabbitmq, nginx
    }

    /// The repository root, found from this file's path.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let environment = EnvironmentReader()

    /// The stack's data folder (`SWIFTCHAT_STACK_DIR`, as `infra/stack.sh env` exports it).
    public static var stackDirectory: URL {
        URL(fileURLWithPath: environment.string("SWIFTCHAT_STACK_DIR", default: root.appendingPathComponent(".stack").path))
    }

    public static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }

    /// The stack's broker as the services see it (their batch pacing included), unless a test
    /// sets its own `batchInterval`.
    public static func amqp(publishTimeout: Duration = .seconds(10), batchInterval: Duration? = nil) -> AMQPConfiguration {
        var configuration = configured { try AMQPConfiguration(environment: environment) }
        configuration.publishTimeout = publishTimeout
        if let batchInterval { configuration.batchInterval = batchInterval }
        return configuration
    }

    public static func redis() -> RedisConfiguration {
        configured { try RedisConfiguration(environment: environment) }
    }

    /// The stack's admin role: tests create and drop throwaway schemas with it.
    public static func database(schema: SchemaName) -> DatabaseConfiguration {
        DatabaseConfiguration(
            host: environment.string("DATABASE_HOST", default: "127.0.0.1"),
            port: configured { try environment.port("DATABASE_PORT", default: 25432) },
            database: environment.string("DATABASE_NAME", default: "swiftchat"),
            username: environment.string("DATABASE_ADMIN_USER", default: "swiftchat"),
            password: environment.string("DATABASE_ADMIN_PASSWORD", default: "swiftchat"),
            schema: schema,
            maximumConnections: 10
        )
    }

    /// A setting read from the stack's environment. One it cannot read stops the tests with the
    /// reason, rather than letting them run against the defaults: another server than meant.
    private static func configured<Value>(_ read: () throws -> Value) -> Value {
        do {
            return try read()
        } catch {
            fatalError("the test stack's environment: \(error)")
        }
    }

    /// A fresh name for a queue, schema or key, so concurrent tests never share state.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// A throwaway schema name (dropped by `withDatabase`).
    public static func uniqueSchema(_ prefix: String) -> SchemaName {
        try! SchemaName(uniqueName("test_\(prefix)"))
    }

    /// Runs `body` with a running Postgres client on a throwaway schema, dropped afterwards.
    public static func withDatabase<Result: Sendable>(
        schema: SchemaName,
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await withClient(schema: schema) { client in
            do {
                let result = try await body(client)
                _ = try? await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema.rawValue) CASCADE")
                return result
            } catch {
                _ = try? await client.query("DROP SCHEMA IF EXISTS \(unescaped: schema.rawValue) CASCADE")
                throw error
            }
        }
    }

    /// Runs `body` with a running Postgres client on `schema`, left as it is (a service's, to look into).
    public static func withClient<Result: Sendable>(
        schema: SchemaName,
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await database(schema: schema).makeClient(logger: logger).whileRunning(body)
    }

    // MARK: Fault injection

    /// SIGKILL, as a crash would.
    public static func kill(_ component: Component) async throws {
        try await stackScript(["kill", component.rawValue])
    }

    public static func stop(_ component: Component) async throws {
        try await stackScript(["stop", component.rawValue])
    }

    /// Starts a component and waits until it accepts connections.
    public static func start(_ component: Component) async throws {
        try await stackScript(["start", component.rawValue])
    }

    /// SIGSTOP: the server keeps its connections but stops answering, as a hung one would.
    public static func freeze(_ component: Component) throws {
        try signal(SIGSTOP, to: component)
    }

    /// SIGCONT after `freeze`.
    public static func thaw(_ component: Component) throws {
        try signal(SIGCONT, to: component)
    }

    private static func signal(_ signal: Int32, to component: Component) throws {
        let file = stackDirectory.appendingPathComponent("run/\(component.rawValue).pid")
        let text = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = pid_t(text), Glibc.kill(pid, signal) == 0 else {
            throw ScriptError(arguments: ["signal \(signal)", component.rawValue], status: errno)
        }
    }

    public struct ScriptError: Error, CustomStringConvertible {
        public let arguments: [String]
        public let status: Int32
        public var description: String { "infra/stack.sh \(arguments.joined(separator: " ")) exited with \(status)" }
    }

    private static func stackScript(_ arguments: [String]) async throws {
        let script = try ChildProcess.spawn("/bin/bash", [root.appendingPathComponent("infra/stack.sh").path] + arguments)
        let status = await script.exitStatus()
        guard status == 0 else { throw ScriptError(arguments: arguments, status: status) }
    }
}

extension TestStack {
    /// The first of `count` consecutive ports that are free on 127.0.0.1, for services a test runs
    /// as processes. Chosen below the kernel's ephemeral range (32768 and up), so an outgoing
    /// connection cannot take one between this check and the service's own bind.
    public static func freePorts(_ count: Int) -> Int {
        while true {
            let base = Int.random(in: 20_000...(32_000 - count))
            if (base..<(base + count)).allSatisfy(isFree) { return base }
        }
    }

    private static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(
    timeout: Duration = .seconds(10),
    every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
