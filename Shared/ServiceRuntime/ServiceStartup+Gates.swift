import Logging
import ServiceHTTP
import ServiceLifecycle
import Synchronization

/// Whether the service has started its work (migrations applied, consumers running): until then
/// `/readyz` says not ready, while `/healthz` already answers.
final class StartupGate: Sendable {
    private let open = Atomic<Bool>(false)

    func markStarted() { open.store(true, ordering: .releasing) }

    var check: ReadinessCheck {
        ReadinessCheck("started") { self.open.load(ordering: .acquiring) }
    }
}

/// Set once graceful shutdown begins: `/readyz` turns not ready at once, so the gateway or the
/// Ingress stops sending new work while what is in flight drains.
final class DrainSignal: Service {
    private let draining = Atomic<Bool>(false)

    func run() async throws {
        try? await gracefulShutdown()
        draining.store(true, ordering: .releasing)
    }

    var check: ReadinessCheck {
        ReadinessCheck("draining") { !self.draining.load(ordering: .acquiring) }
    }
}

/// Runs the migrations (waiting for Postgres as long as it takes), then the services that need the
/// schema (the outbox relay, the consumers), as child tasks: they see the group's graceful
/// shutdown like any service.
struct AfterMigrations: Service {
    let name: String
    let migrate: @Sendable () async throws -> Void
    let services: [any Service]
    let started: StartupGate
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await migrate() }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        logger.info("migrations applied; starting the work", metadata: ["service": "\(name)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in services { group.addTask { try await service.run() } }
            started.markStarted()
            try await group.waitForAll()
        }
    }
}
