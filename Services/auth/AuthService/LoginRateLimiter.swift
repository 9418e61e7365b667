import Logging
import RedisClient

/// Counts failed sign-ins per account (its user id, or the login string when no account has it)
/// and per client address in Redis, each in a fixed window.
/// When Redis is unreachable it lets attempts through (and logs): an outage of the cache must not
/// lock everyone out, and bcrypt still makes each guess slow.
struct LoginRateLimiter: Sendable {
    let redis: RedisClient
    let namespace: String
    let maxPerAccount: Int
    let maxPerAddress: Int
    let window: Duration
    let logger: Logger

    private func accountKey(_ account: String) -> String { "\(namespace):signin:fail:account:\(account)" }
    private func addressKey(_ address: String) -> String { "\(namespace):signin:fail:address:\(address)" }

    /// Seconds to wait when either limit is reached; nil when the attempt may go ahead.
    func retryAfter(account: String, address: String) async -> Int? {
        do {
            let replies = try await redis.pipeline([
                ["GET", accountKey(account)], ["PTTL", accountKey(account)],
                ["GET", addressKey(address)], ["PTTL", addressKey(address)],
            ])
            let accountFailures = (try? replies[0].get().integer) ?? 0
            let addressFailures = (try? replies[2].get().integer) ?? 0
            var wait: Int?
            if accountFailures >= maxPerAccount { wait = Self.seconds(replies[1]) }
            if addressFailures >= maxPerAddress { wait = max(wait ?? 0, Self.seconds(replies[3])) }
            return wait
        } catch {
            logger.warning("rate limiter unavailable, allowing the attempt", metadata: ["error": "\(error)"])
            return nil
        }
    }

    func recordFailure(account: String, address: String) async {
        let window = String(Int(window.components.seconds) * 1000)
        do {
            // SET NX starts a window without extending a running one.
            _ = try await redis.pipeline([
                ["SET", accountKey(account), "0", "PX", window, "NX"], ["INCR", accountKey(account)],
                ["SET", addressKey(address), "0", "PX", window, "NX"], ["INCR", addressKey(address)],
            ])
        } catch {
            logger.warning("rate limiter unavailable, failure not counted", metadata: ["error": "\(error)"])
        }
    }

    func recordSuccess(account: String) async {
        _ = try? await redis.delete([accountKey(account)])
    }

    private static func seconds(_ reply: Result<RedisValue, RedisError>) -> Int {
        let milliseconds = (try? reply.get().integer) ?? 1000
        return max(1, (milliseconds + 999) / 1000)
    }
}
