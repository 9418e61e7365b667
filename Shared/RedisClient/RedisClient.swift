import ServiceConfig
import Synchronization

/// A small pool of hiredis connections with async, `Sendable` commands.
///
/// Each pooled connection is an actor on its own thread; calls are spread round-robin. Failures
/// are thrown as `RedisError` so callers can degrade (a cache treats them as a miss).
public final class RedisClient: Sendable {
    private let connections: [RedisConnection]
    private let next = Atomic<Int>(0)

    public init(configuration: RedisConfiguration) {
        self.connections = (0..<configuration.poolSize).map { _ in RedisConnection(configuration: configuration) }
    }

    /// Runs one command, e.g. `["SET", "k", "v"]`.
    @discardableResult
    public func command(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await pipeline([arguments])[0].get()
    }

    /// Runs commands in one round trip, in order, on one connection.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [Result<RedisValue, RedisError>] {
        guard !commands.isEmpty else { return [] }
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return try await connections[abs(index % connections.count)].pipeline(commands)
    }

    /// Closes every connection and its thread.
    public func shutdown() async {
        for connection in connections { await connection.shutdown() }
    }
}

// MARK: Commands the services use

extension RedisClient {
    public func ping() async throws(RedisError) -> Bool {
        try await command(["PING"]).string == "PONG"
    }

    public func get(_ key: String) async throws(RedisError) -> String? {
        try await command(["GET", key]).string
    }

    /// SET with an optional expiry; `onlyIfAbsent` is SET NX. Returns whether the value was set.
    @discardableResult
    public func set(_ key: String, _ value: String, expiry: Duration? = nil, onlyIfAbsent: Bool = false) async throws(RedisError) -> Bool {
        var arguments = ["SET", key, value]
        if let expiry { arguments += ["PX", String(max(1, expiry.milliseconds))] }
        if onlyIfAbsent { arguments.append("NX") }
        return try await command(arguments) != .null
    }

    @discardableResult
    public func delete(_ keys: [String]) async throws(RedisError) -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await command(["DEL"] + keys).integer ?? 0
    }

    public func exists(_ key: String) async throws(RedisError) -> Bool {
        try await command(["EXISTS", key]).integer == 1
    }

    @discardableResult
    public func increment(_ key: String, by amount: Int = 1) async throws(RedisError) -> Int {
        guard let value = try await command(["INCRBY", key, String(amount)]).integer else {
            throw RedisError(.unexpectedReply, "INCRBY did not return an integer")
        }
        return value
    }

    @discardableResult
    public func expire(_ key: String, after duration: Duration) async throws(RedisError) -> Bool {
        try await command(["PEXPIRE", key, String(max(1, duration.milliseconds))]).integer == 1
    }

    /// Remaining time to live; nil when the key has no expiry or does not exist.
    public func timeToLive(_ key: String) async throws(RedisError) -> Duration? {
        let milliseconds = try await command(["PTTL", key]).integer ?? -2
        return milliseconds >= 0 ? .milliseconds(milliseconds) : nil
    }

    @discardableResult
    public func setAdd(_ key: String, _ members: [String]) async throws(RedisError) -> Int {
        guard !members.isEmpty else { return 0 }
        return try await command(["SADD", key] + members).integer ?? 0
    }

    @discardableResult
    public func setRemove(_ key: String, _ members: [String]) async throws(RedisError) -> Int {
        guard !members.isEmpty else { return 0 }
        return try await command(["SREM", key] + members).integer ?? 0
    }

    public func setMembers(_ key: String) async throws(RedisError) -> Set<String> {
        Set(try await command(["SMEMBERS", key]).array?.compactMap(\.string) ?? [])
    }

    public func setContains(_ key: String, _ member: String) async throws(RedisError) -> Bool {
        try await command(["SISMEMBER", key, member]).integer == 1
    }

    @discardableResult
    public func hashSet(_ key: String, _ fields: [String: String]) async throws(RedisError) -> Int {
        guard !fields.isEmpty else { return 0 }
        return try await command(["HSET", key] + fields.flatMap { [$0.key, $0.value] }).integer ?? 0
    }

    public func hashGet(_ key: String, _ field: String) async throws(RedisError) -> String? {
        try await command(["HGET", key, field]).string
    }

    public func hashGetAll(_ key: String) async throws(RedisError) -> [String: String] {
        let flat = try await command(["HGETALL", key]).array?.compactMap(\.string) ?? []
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            fields[flat[index]] = flat[index + 1]
            index += 2
        }
        return fields
    }

    @discardableResult
    public func hashDelete(_ key: String, _ fields: [String]) async throws(RedisError) -> Int {
        guard !fields.isEmpty else { return 0 }
        return try await command(["HDEL", key] + fields).integer ?? 0
    }

    /// Publishes to a pub/sub channel; returns how many subscribers received it.
    @discardableResult
    public func publish(_ channel: String, _ message: String) async throws(RedisError) -> Int {
        try await command(["PUBLISH", channel, message]).integer ?? 0
    }
}
