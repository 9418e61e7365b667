import BlockingExecutor
import Foundation
import Hummingbird
import Observability
import ServiceConfig
import Synchronization

/// One dependency `/readyz` checks: a name and a probe that throws or returns false when it is down.
public struct ReadinessCheck: Sendable {
    public let name: String
    public let probe: @Sendable () async throws -> Bool

    public init(_ name: String, probe: @escaping @Sendable () async throws -> Bool) {
        self.name = name
        self.probe = probe
    }
}

/// The readiness checks of a service, to which parts built later (a socket instance's queues)
/// add their own.
public final class ReadinessChecks: Sendable {
    private let checks: Mutex<[ReadinessCheck]>

    public init(_ checks: [ReadinessCheck] = []) {
        self.checks = Mutex(checks)
    }

    public func add(_ check: ReadinessCheck) {
        checks.withLock { $0.append(check) }
    }

    public var all: [ReadinessCheck] { checks.withLock { $0 } }
}

extension Router {
    /// `/healthz` (the process answers and is not stuck: `liveness`, never another server),
    /// `/readyz` (it can serve its own requests: `readiness`, each probe within a second) and
    /// `/metrics` (Prometheus text).
    public func addOperationalRoutes(readiness: ReadinessChecks, liveness: [ReadinessCheck] = []) {
        get("/healthz") { _, _ in try await Self.report(liveness, up: "ok", down: "stuck") }
        get("/readyz") { _, _ in try await Self.report(readiness.all, up: "ready", down: "unavailable") }
        get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: Observability.renderMetrics())))
        }
    }

    /// 200 with `up` when every check passes, 503 with `down` otherwise; each check's state listed.
    private static func report(_ checks: [ReadinessCheck], up: String, down: String) async throws -> Response {
        let results = await withTaskGroup(of: (String, Bool).self) { group in
            for check in checks {
                group.addTask { (check.name, await Self.probe(check)) }
            }
            var results: [String: Bool] = [:]
            for await (name, ready) in group { results[name] = ready }
            return results
        }
        let passed = results.values.allSatisfy { $0 }
        let body = try JSONSerialization.data(
            withJSONObject: ["status": passed ? up : down, "checks": results.mapValues { $0 ? "up" : "down" }],
            options: [.sortedKeys]
        )
        return Response(
            status: passed ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    private static func probe(_ check: ReadinessCheck) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await check.probe()) ?? false }
            group.addTask {
                try? await LoopTimer.sleep(for: .seconds(1))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

extension RouterMethods {
    /// Serves the `openapi.yaml` a service target ships as a resource (kept in the repository next
    /// to its code).
    public func addOpenAPIDocument(at path: RouterPath, bundle: Bundle) throws {
        guard let url = bundle.url(forResource: "openapi", withExtension: "yaml") else {
            throw ConfigurationError(key: "openapi.yaml", value: bundle.bundlePath, expected: "the service's OpenAPI document in its bundle")
        }
        addOpenAPIDocument(at: path, yaml: try String(contentsOf: url, encoding: .utf8))
    }

    public func addOpenAPIDocument(at path: RouterPath, yaml: String) {
        get(path) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: yaml)))
        }
    }
}
