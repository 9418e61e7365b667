import Foundation
import Hummingbird
import Observability
import ServiceConfig

/// One dependency `/readyz` checks: a name and a probe that throws or returns false when it is down.
public struct ReadinessCheck: Sendable {
    public let name: String
    public let probe: @Sendable () async throws -> Bool

    public init(_ name: String, probe: @escaping @Sendable () async throws -> Bool) {
        self.name = name
        self.probe = probe
    }
}

extension Router {
    /// `/healthz` (the process answers), `/readyz` (its dependencies answer, each within a second)
    /// and `/metrics` (Prometheus text).
    public func addOperationalRoutes(readiness: [ReadinessCheck]) {
        get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        get("/readyz") { _, _ in
            let results = await withTaskGroup(of: (String, Bool).self) { group in
                for check in readiness {
                    group.addTask { (check.name, await Self.probe(check)) }
                }
                var results: [String: Bool] = [:]
                for await (name, ready) in group { results[name] = ready }
                return results
            }
            let ready = results.values.allSatisfy { $0 }
            let body = try JSONSerialization.data(
                withJSONObject: ["status": ready ? "ready" : "unavailable", "checks": results.mapValues { $0 ? "up" : "down" }],
                options: [.sortedKeys]
            )
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: Observability.renderMetrics())))
        }
    }

    private static func probe(_ check: ReadinessCheck) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await check.probe()) ?? false }
            group.addTask {
                try? await Task.sleep(for: .seconds(1))
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
