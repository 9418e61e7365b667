import Foundation
import Logging
import Metrics
import RedisClient
import Synchronization

/// The Redis query cache for user lists and searches.
///
/// Entries live under a version number (`<namespace>:cache:version`) that every change to users bumps:
/// a bump makes every older entry unreachable at once, so no read is ever served from before the
/// event that changed it. The version is read before Postgres is queried, so a result computed
/// from older data can only be stored under the older version. When Redis is down, reads go
/// straight to Postgres; a bump that could not be written blocks the cache (in this process) until
/// one succeeds.
final class UserQueryCache: Sendable {
    enum Outcome: String, Sendable {
        case hit, miss, bypass
    }

    private let redis: RedisClient
    private let namespace: String
    private var versionKey: String { "\(namespace):cache:version" }
    private let ttl: Duration
    private let logger: Logger
    private let bumpPending = Atomic<Bool>(false)
    private let hits = Counter(label: "swiftchat_users_cache_total", dimensions: [("result", "hit")])
    private let misses = Counter(label: "swiftchat_users_cache_total", dimensions: [("result", "miss")])
    private let bypasses = Counter(label: "swiftchat_users_cache_total", dimensions: [("result", "bypass")])

    init(redis: RedisClient, namespace: String, ttl: Duration = .seconds(60), logger: Logger) {
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl
        self.logger = logger
    }

    /// The cached value for `key`, or `load()` stored for the next reader.
    func value<Value: Codable & Sendable>(
        for key: String,
        as type: Value.Type,
        load: () async throws -> Value
    ) async throws -> (Value, Outcome) {
        guard let version = await currentVersion() else {
            bypasses.increment()
            return (try await load(), .bypass)
        }
        let entry = "\(namespace):q:\(version):\(key)"
        if let cached = try? await redis.get(entry), let value = try? JSONDecoder().decode(type, from: Data(cached.utf8)) {
            hits.increment()
            return (value, .hit)
        }
        let value = try await load()
        if let data = try? JSONEncoder().encode(value) {
            _ = try? await redis.set(entry, String(decoding: data, as: UTF8.self), expiry: ttl)
        }
        misses.increment()
        return (value, .miss)
    }

    /// Makes every cached list unreachable; call after each committed change to users.
    func invalidate() async {
        do {
            try await redis.increment(versionKey)
            bumpPending.store(false, ordering: .sequentiallyConsistent)
        } catch {
            bumpPending.store(true, ordering: .sequentiallyConsistent)
            logger.warning("cache invalidation failed; bypassing the cache until it succeeds", metadata: ["error": "\(error)"])
        }
    }

    private func currentVersion() async -> String? {
        if bumpPending.load(ordering: .sequentiallyConsistent) {
            await invalidate()
            if bumpPending.load(ordering: .sequentiallyConsistent) { return nil }
        }
        do {
            return try await redis.get(versionKey) ?? "0"
        } catch {
            return nil
        }
    }
}
