import Logging
import RedisClient
import ServiceConfig

/// Counts sign-in attempts per account (its user id, or the login string when no account has it)
/// and per client address in Redis, each in a fixed window. An attempt is counted before its
/// password is checked, so guesses sent all at once cannot slip past the limit while the first
/// ones are still being checked; a successful attempt is given back.
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

    /// Counts an attempt. Seconds to wait when it is over either limit; nil when it may go ahead.
    func begin(account: String, address: String) async -> Int? {
        let window = String(window.milliseconds)
        do {
            // SET NX starts a window without extending a running one; INCR counts in one step,
            // so of many attempts at once exactly the first `max` go ahead.
            let replies = try await redis.pipeline([
                ["SET", accountKey(account), "0", "PX", window, "NX"], ["INCR", accountKey(account)], ["PTTL", accountKey(account)],
                ["SET", addressKey(address), "0", "PX", window, "NX"], ["INCR", addressKey(address)], ["PTTL", addressKey(address)],
            ])
            var wait: Int?
            if ((try? replies[1].get().integer) ?? 0) > maxPerAccount { wait = Self.seconds(replies[2]) }
            if ((try? replies[4].get().integer) ?? 0) > maxPerAddress { wait = max(wait ?? 0, Self.seconds(replies[5])) }
            return wait
        } catch {
            logger.warning("rate limiter unavailable, allowing the attempt", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// The attempt succeeded: the account's count starts again, and the address gets its attempt back.
    func succeeded(account: String, address: String) async {
        _ = try? await redis.pipeline([["DEL", accountKey(account)], ["DECR", addressKey(address)]])
    }

    private static func seconds(_ reply: Result<RedisValue, RedisError>) -> Int {
        let milliseconds = (try? reply.get().integer) ?? 1000
        return max(1, (milliseconds + 999) / 1000)
    }
}
