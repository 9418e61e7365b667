import Foundation
import Logging
import Metrics
import RedisClient
import ServiceHTTP

/// The revocation view every service shares, in Redis: one key per ended session, and one per
/// deleted account (every token of it issued before the deletion is refused), each living as long
/// as an access token can. auth writes them when a session ends; every service reads them on each
/// authenticated request and websocket upgrade, one round trip for both keys.
///
/// When Redis cannot be reached the check fails open: the token's signature and expiry still
/// hold, so a revoked session can be used at most until its access token expires (15 minutes by
/// default), and only while Redis is away. Failing closed would sign every user out during a
/// Redis outage; the choice is counted in `swiftchat_revocation_unchecked_total`.
public struct SessionRevocationRegistry: SessionRevocations {
    let redis: RedisClient
    let logger: Logger
    private let unchecked = Counter(label: "swiftchat_revocation_unchecked_total")

    /// Shared by every service and deployment namespace: session and user ids are unique.
    private static let prefix = "swiftchat:revoked"

    public init(redis: RedisClient, logger: Logger) {
        self.redis = redis
        self.logger = logger
    }

    private static func sessionKey(_ sessionId: String) -> String { "\(prefix):session:\(sessionId)" }
    private static func userKey(_ userId: String) -> String { "\(prefix):user:\(userId)" }

    public func isRevoked(sessionId: String, userId: String, issuedAt: Date) async -> Bool {
        do {
            let replies = try await redis.pipeline([["EXISTS", Self.sessionKey(sessionId)], ["GET", Self.userKey(userId)]])
            if try replies[0].get().integer == 1 { return true }
            // A deleted account: tokens issued up to the deletion (to the second) are void.
            if let deletedAt = try replies[1].get().string.flatMap(Double.init) {
                return issuedAt.timeIntervalSince1970 <= deletedAt + 1
            }
            return false
        } catch {
            unchecked.increment()
            logger.warning("revocations unreadable; accepting a valid token unchecked", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func ended(among sessions: [(sessionId: String, userId: String)]) async -> Set<String> {
        guard !sessions.isEmpty else { return [] }
        do {
            let replies = try await redis.pipeline(sessions.flatMap { [["EXISTS", Self.sessionKey($0.sessionId)], ["EXISTS", Self.userKey($0.userId)]] })
            var ended: Set<String> = []
            for (index, session) in sessions.enumerated() {
                // A deleted account's sockets were all opened before the deletion: all end.
                if (try? replies[2 * index].get().integer) == 1 || (try? replies[2 * index + 1].get().integer) == 1 {
                    ended.insert(session.sessionId)
                }
            }
            return ended
        } catch {
            unchecked.increment()
            logger.warning("revocations unreadable; open sockets not checked this time", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// Ends a session everywhere for `lifetime` (the access token's lifetime).
    public func revoke(sessionId: String, lifetime: Duration) async throws {
        try await redis.set(Self.sessionKey(sessionId), "1", expiry: lifetime)
    }

    /// Ends every session of a deleted account that started before `at`.
    public func revokeUser(_ userId: String, at: Date, lifetime: Duration) async throws {
        try await redis.set(Self.userKey(userId), String(at.timeIntervalSince1970), expiry: lifetime)
    }
}
