import Foundation
import Logging
import RedisClient
import ServiceLifecycle

/// Which socket-handler instances hold connections of which users, in Redis.
///
/// Each user has a sorted set of instance ids scored by when the entry expires. Instances refresh
/// their entries on a heartbeat, so the entries of an instance that crashed lapse within `ttl`
/// without anyone cleaning up after it.
struct PresenceRegistry: Sendable {
    let redis: RedisClient
    let namespace: String
    let instanceId: String
    let ttl: Duration

    private func key(_ userId: String) -> String { "\(namespace):presence:\(userId)" }

    private var nowMilliseconds: Int { Int(Date().timeIntervalSince1970 * 1000) }

    private var ttlMilliseconds: Int { Int(ttl.components.seconds) * 1000 + Int(ttl.components.attoseconds / 1_000_000_000_000_000) }

    /// Records (or refreshes) this instance for these users.
    func register(_ userIds: [String]) async throws {
        guard !userIds.isEmpty else { return }
        let expiry = String(nowMilliseconds + ttlMilliseconds)
        var commands: [[String]] = []
        for userId in userIds {
            commands.append(["ZADD", key(userId), expiry, instanceId])
            commands.append(["PEXPIRE", key(userId), String(ttlMilliseconds * 2)])
        }
        for result in try await redis.pipeline(commands) { _ = try result.get() }
    }

    func unregister(_ userId: String) async throws {
        try await redis.command(["ZREM", key(userId), instanceId])
    }

    /// The live instances of each user, grouped: instance id → the users it holds.
    func instances(of userIds: [String]) async throws -> [String: [String]] {
        guard !userIds.isEmpty else { return [:] }
        let now = String(nowMilliseconds)
        let replies = try await redis.pipeline(userIds.map { ["ZRANGEBYSCORE", key($0), now, "+inf"] })
        var byInstance: [String: [String]] = [:]
        for (userId, reply) in zip(userIds, replies) {
            for instance in try reply.get().array?.compactMap(\.string) ?? [] {
                byInstance[instance, default: []].append(userId)
            }
        }
        return byInstance
    }
}

/// Refreshes this instance's presence entries well before they expire.
final class PresenceHeartbeat: Service {
    private let registry: PresenceRegistry
    private let connections: ConnectionRegistry
    private let interval: Duration
    private let logger: Logger

    init(registry: PresenceRegistry, connections: ConnectionRegistry, interval: Duration, logger: Logger) {
        self.registry = registry
        self.connections = connections
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await registry.register(connections.connectedUsers)
            } catch {
                logger.warning("presence heartbeat failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
