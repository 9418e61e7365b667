import Foundation
import LiveSockets
import Logging
import RedisClient
import ServiceConfig

/// Which socket-handler instances hold connections of which users, and who is announced online,
/// in Redis, shared by every instance.
///
/// - `presence:<user>`: a sorted set of instance ids scored by when the entry expires. Instances
///   refresh their entries on a heartbeat, so a crashed instance's entries lapse within `ttl`.
/// - `presence:online`: the users announced online (`presence.changed`), so that a user's first
///   connection over all devices and instances is announced once.
/// - `presence:pending`: users whose last connection closed, scored by when to announce them
///   offline: `grace` later, unless they came back meanwhile (flapping reconnects stay quiet).
/// - `presence:instances` and `presence:instance:<id>`: each instance's heartbeat and the users it
///   holds, so that the users of an instance that stopped beating can be settled by the others.
///
/// Each transition is one Lua script, atomic in Redis, so instances racing on the same user
/// announce each change once.
struct PresenceRegistry: Sendable {
    let redis: RedisClient
    let namespace: String
    let instanceId: String
    let ttl: Duration
    var grace: Duration = .seconds(5)

    private var prefix: String { "\(namespace):presence:" }
    private func key(_ userId: String) -> String { prefix + userId }
    private var onlineKey: String { prefix + "online" }
    private var pendingKey: String { prefix + "pending" }
    private var lastSeenKey: String { prefix + "last-seen" }
    private var instancesKey: String { prefix + "instances" }
    private func usersKey(of instance: String) -> String { "\(namespace):presence-instance:\(instance)" }

    static var nowMilliseconds: Int { Int(Date().timeIntervalSince1970 * 1000) }

    private var ttlMilliseconds: Int { ttl.milliseconds }

    /// This instance opened its first connection of `userId`. The time they came online when
    /// they were offline everywhere (announce it); nil when another connection or a pending
    /// offline (a quick reconnect) already covers them.
    func connected(_ userId: String) async throws -> Date? {
        let now = Self.nowMilliseconds
        let reply = try await redis.command([
            "EVAL", Scripts.connect, "5", key(userId), onlineKey, pendingKey, usersKey(of: instanceId), instancesKey,
            instanceId, String(now + ttlMilliseconds), String(ttlMilliseconds * 2), String(now), userId,
        ])
        return reply.integer == 1 ? Date(timeIntervalSince1970: Double(now) / 1000) : nil
    }

    /// This instance closed its last connection of `userId`; if no instance holds them any more,
    /// they become due for an offline announcement after the grace period.
    func disconnected(_ userId: String) async throws {
        let now = Self.nowMilliseconds
        _ = try await redis.command([
            "EVAL", Scripts.disconnect, "4", key(userId), pendingKey, usersKey(of: instanceId), lastSeenKey,
            instanceId, String(now), String(now + grace.milliseconds), userId,
        ])
    }

    /// Refreshes this instance's heartbeat and its entries for these users. A user missing from
    /// the online set (Redis lost it) is put back, without an announcement: they never went
    /// offline, and their going offline later must still be announced.
    func refresh(_ userIds: [String]) async throws {
        let now = Self.nowMilliseconds
        let expiry = String(now + ttlMilliseconds)
        var commands: [[String]] = [["ZADD", instancesKey, expiry, instanceId]]
        for userId in userIds {
            commands.append(["ZADD", key(userId), expiry, instanceId])
            commands.append(["PEXPIRE", key(userId), String(ttlMilliseconds * 2)])
            commands.append(["ZADD", onlineKey, "NX", String(now), userId])
        }
        if !userIds.isEmpty { commands.append(["SADD", usersKey(of: instanceId)] + userIds) }
        for result in try await redis.pipeline(commands) { _ = try result.get() }
    }

    /// Whether Redis still holds this instance's heartbeat: false after Redis restarted empty (even
    /// between two sweeps that both reached it) or after others took this instance for dead.
    func holdsThisInstance() async throws -> Bool {
        try await redis.command(["ZSCORE", instancesKey, instanceId]) != .null
    }

    /// Instances whose heartbeat lapsed (or, with `including`, this one's state from before a
    /// restart): their users become due now. Returns how many users were handed over.
    func reapDeadInstances(including own: String? = nil) async throws -> Int {
        let now = String(Self.nowMilliseconds)
        var dead = try await redis.command(["ZRANGEBYSCORE", instancesKey, "-inf", "(\(now)"]).array?.compactMap(\.string) ?? []
        if let own { dead.append(own) }
        var handedOver = 0
        for instance in Set(dead) {
            let reply = try await redis.command([
                "EVAL", Scripts.reap, "4", instancesKey, usersKey(of: instance), pendingKey, lastSeenKey,
                instance, now, prefix, String(ttlMilliseconds), instance == own ? "1" : "0",
            ])
            handedOver += reply.integer ?? 0
        }
        return handedOver
    }

    /// Users due to go offline who are still held by no instance: each is claimed by exactly one
    /// caller, with the time they were last seen.
    func settleDue(limit: Int = 500) async throws -> [(userId: String, lastSeen: Date)] {
        let now = String(Self.nowMilliseconds)
        let due = try await redis.command(["ZRANGEBYSCORE", pendingKey, "-inf", now, "LIMIT", "0", String(limit)]).array?.compactMap(\.string) ?? []
        var offline: [(String, Date)] = []
        for userId in due {
            let reply = try await redis.command(["EVAL", Scripts.settle, "4", pendingKey, key(userId), onlineKey, lastSeenKey, userId, now])
            if let seen = reply.integer {
                offline.append((userId, Date(timeIntervalSince1970: Double(seen) / 1000)))
            }
        }
        return offline
    }

    /// The live instances holding each user, in one round trip: user id → instance ids.
    func instances(of userIds: some Collection<String>) async throws -> [String: [String]] {
        guard !userIds.isEmpty else { return [:] }
        let now = String(Self.nowMilliseconds)
        let users = Array(userIds)
        let replies = try await redis.pipeline(users.map { ["ZRANGEBYSCORE", key($0), now, "+inf"] })
        var byUser: [String: [String]] = [:]
        for (userId, reply) in zip(users, replies) {
            let instances = try reply.get().array?.compactMap(\.string) ?? []
            if !instances.isEmpty { byUser[userId] = instances }
        }
        return byUser
    }
}

extension PresenceRegistry {
    enum Scripts {
        /// KEYS: user, online, pending, instance users, instances. ARGV: instance, expiry, key ttl, now, user.
        static let connect = """
            redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            redis.call('SADD', KEYS[4], ARGV[5])
            redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
            redis.call('ZREM', KEYS[3], ARGV[5])
            return redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[5])
            """

        /// KEYS: user, pending, instance users, last seen. ARGV: instance, now, due, user.
        static let disconnect = """
            redis.call('ZREM', KEYS[1], ARGV[1])
            redis.call('SREM', KEYS[3], ARGV[4])
            if redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf') == 0 then
              redis.call('HSET', KEYS[4], ARGV[4], ARGV[2])
              redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
              return 1
            end
            return 0
            """

        /// KEYS: instances, instance users, pending, last seen. ARGV: instance, now, user key prefix, ttl, force.
        static let reap = """
            local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
            if ARGV[5] ~= '1' and (not expiry or tonumber(expiry) >= tonumber(ARGV[2])) then return 0 end
            redis.call('ZREM', KEYS[1], ARGV[1])
            local seen = ARGV[2]
            if expiry then seen = tostring(math.min(tonumber(ARGV[2]), tonumber(expiry) - tonumber(ARGV[4]))) end
            local users = redis.call('SMEMBERS', KEYS[2])
            for _, user in ipairs(users) do
              redis.call('ZREM', ARGV[3] .. user, ARGV[1])
              redis.call('HSETNX', KEYS[4], user, seen)
              redis.call('ZADD', KEYS[3], ARGV[2], user)
            end
            redis.call('DEL', KEYS[2])
            return #users
            """

        /// KEYS: pending, user, online, last seen. ARGV: user, now. The last-seen time, or nil.
        /// It is always after the time the user was announced online (a crash before the
        /// instance's next heartbeat would otherwise date it earlier), so "newest wins" holds.
        static let settle = """
            if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return nil end
            if redis.call('ZCOUNT', KEYS[2], ARGV[2], '+inf') > 0 then return nil end
            local seen = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or ARGV[2])
            redis.call('HDEL', KEYS[4], ARGV[1])
            local since = redis.call('ZSCORE', KEYS[3], ARGV[1])
            if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return nil end
            if since and seen <= tonumber(since) then seen = tonumber(since) + 1 end
            return seen
            """
    }
}
