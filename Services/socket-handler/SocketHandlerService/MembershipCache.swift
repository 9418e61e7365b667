import RedisClient

/// Who is in which conversation, as far as socket-handler needs to know for typing: a Redis set
/// per conversation, replaced whole from every event that carries the member list (conversation
/// events, stored messages, receipts). messages remains the authority: sends and receipts are
/// checked there. Unknown (nil) when Redis lost it and no event has refreshed it yet.
struct MembershipCache: Sendable {
    let redis: RedisClient
    let namespace: String

    private func key(_ conversationId: String) -> String { "\(namespace):members:\(conversationId)" }

    func replace(_ conversationId: String, with memberIds: [String]) async throws {
        var commands: [[String]] = [["DEL", key(conversationId)]]
        if !memberIds.isEmpty {
            commands.append(["SADD", key(conversationId)] + memberIds)
            commands.append(["EXPIRE", key(conversationId), String(7 * 86_400)])
        }
        for result in try await redis.pipeline(commands) { _ = try result.get() }
    }

    func members(of conversationId: String) async throws -> [String]? {
        let members = try await redis.setMembers(key(conversationId))
        return members.isEmpty ? nil : members.sorted()
    }
}
