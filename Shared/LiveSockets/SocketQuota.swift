import BlockingExecutor
import Foundation
import Logging
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle

/// At most `limit` sockets per user on one stream, across every instance (the public contract: the next
/// upgrade is refused with 429). Redis holds a sorted set per user and stream of socket ids scored
/// by expiry; each instance refreshes its own sockets' entries on a heartbeat (`run`), so the
/// sockets of an instance that died lapse by themselves. When Redis is away the quota is not
/// enforced (sockets are still bounded per connection and per instance by their buffers).
public final class SocketQuota: Service {
    private let redis: RedisClient
    private let prefix: String
    private let limit: Int
    private let ttl: Duration
    private let connections: ConnectionRegistry
    private let logger: Logger

    public init(
        redis: RedisClient, namespace: String, stream: String, limit: Int = 20, ttl: Duration = .seconds(60), connections: ConnectionRegistry, logger: Logger
    ) {
        self.redis = redis
        self.prefix = "\(namespace):sockets:\(stream):"
        self.limit = limit
        self.ttl = ttl
        self.connections = connections
        self.logger = logger
    }

    private func key(_ userId: String) -> String { prefix + userId }
    private var now: Int { Int(Date().timeIntervalSince1970 * 1000) }

    /// Throws 429 `too_many_sockets` when the user holds `limit` live sockets on this stream.
    public func check(_ identity: Identity) async throws {
        let open: Int
        do {
            let replies = try await redis.pipeline([
                ["ZREMRANGEBYSCORE", key(identity.userId), "-inf", String(now)],
                ["ZCARD", key(identity.userId)],
            ])
            open = try replies[1].get().integer ?? 0
        } catch {
            logger.debug("socket quota unreadable; not enforced", metadata: ["error": "\(error)"])
            return
        }
        if open >= limit { throw APIError.tooManySockets(limit: limit) }
    }

    public func opened(_ connection: LiveConnection) async {
        _ = try? await redis.pipeline([
            ["ZADD", key(connection.userId), String(now + ttl.milliseconds), connection.id.uuidString],
            ["PEXPIRE", key(connection.userId), String(ttl.milliseconds)],
        ])
    }

    public func closed(_ connection: LiveConnection) async {
        _ = try? await redis.command(["ZREM", key(connection.userId), connection.id.uuidString])
    }

    /// Keeps this instance's entries alive while their sockets are open.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { [ttl] in try await LoopTimer.sleep(for: ttl / 3) }
            let open = connections.all
            guard !open.isEmpty else { continue }
            let expiry = String(now + ttl.milliseconds)
            var commands: [[String]] = []
            for connection in open {
                commands.append(["ZADD", key(connection.userId), expiry, connection.id.uuidString])
                commands.append(["PEXPIRE", key(connection.userId), String(ttl.milliseconds)])
            }
            do { for result in try await redis.pipeline(commands) { _ = try result.get() } } catch {
                logger.debug("socket quota refresh failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
