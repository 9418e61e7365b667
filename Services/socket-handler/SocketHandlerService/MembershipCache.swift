import RedisClient

/// Who is in which conversation, as far as socket-handler needs to know for typing: a Redis set
/// per conversation, replaced whole by every conversation event (which carries the member list),
/// and filled from a stored message's member list only when Redis has lost it. messages remains
/// the authority: sends and receipts are checked there.
struct MembershipCache: Sendable {
    let redis: RedisClient
    let namespace: String

    private static let lifetime = String(7 * 86_400)

    private func key(_ conversationId: String) -> String { "\(namespace):members:\(conversationId)" }

    /// Replaces the member lists of these conversations, in one round trip.
    func replace(_ members: [String: [String]]) async throws {
        var commands: [[String]] = []
        for (conversationId, memberIds) in members {
            commands.append(["DEL", key(conversationId)])
            if !memberIds.isEmpty {
                commands.append(["SADD", key(conversationId)] + memberIds)
                commands.append(["EXPIRE", key(conversationId), Self.lifetime])
            }
        }
        for result in try await redis.pipeline(commands) { _ = try result.get() }
    }

    /// Stores the member lists of the conversations the cache does not hold (lost with Redis,
    /// expired): one round trip to look, one more only when something is missing.
    func fillMissing(_ members: [String: [String]]) async throws {
        let conversationIds = Array(members.keys)
        guard !conversationIds.isEmpty else { return }
        let exists = try await redis.pipeline(conversationIds.map { ["EXISTS", key($0)] })
        var missing: [String: [String]] = [:]
        for (conversationId, reply) in zip(conversationIds, exists) where try reply.get().integer == 0 {
            missing[conversationId] = members[conversationId]
        }
        if !missing.isEmpty { try await replace(missing) }
    }

    /// The members of each conversation, in one round trip; nil for one the cache does not hold.
    func members(of conversationIds: [String]) async throws -> [String: Set<String>] {
        let replies = try await redis.pipeline(conversationIds.map { ["SMEMBERS", key($0)] })
        var members: [String: Set<String>] = [:]
        for (conversationId, reply) in zip(conversationIds, replies) {
            let ids = try reply.get().array?.compactMap(\.string) ?? []
            if !ids.isEmpty { members[conversationId] = Set(ids) }
        }
        return members
    }
}
