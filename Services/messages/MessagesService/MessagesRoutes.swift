import EventContracts
import Foundation
import Hummingbird
import PostgresNIO
import ServiceHTTP
import ServiceRuntime

/// `/api/conversations`. A non-member gets 404 for everything about a conversation, so they cannot
/// learn whether it exists.
struct MessagesRoutes: Sendable {
    let dependencies: ServiceDependencies
    let store: MessagesStore

    static let notFound = APIError.notFound("No such conversation.")

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("/api/conversations").add(middleware: AuthenticationMiddleware(verifier: dependencies.tokenVerifier))
        group.post(use: create)
        group.get(use: list)
        group.get("/:id", use: details)
        group.patch("/:id", use: rename)
        group.post("/:id/members", use: addMember)
        group.patch("/:id/members/:userId", use: changeRole)
        group.delete("/:id/members/:userId", use: removeMember)
        group.get("/:id/messages", use: messages)
        group.post("/:id/messages", use: send)
    }

    @Sendable func create(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let body = try await request.decodeJSON(as: CreateConversationRequest.self, context: context)
        switch body.type {
        case "direct":
            guard let other = body.userId, MessageLimits.isPlausibleId(other) else { throw APIError.validation(["userId": "The user to talk to."]) }
            guard other != me else { throw APIError.badRequest("cannot_talk_to_self", "A direct conversation needs another user.") }
            guard try await awaitUsers([other]).isEmpty else { throw APIError.notFound("No such user.") }
            let (conversation, created) = try await dependencies.transaction { connection in
                guard try await store.knownUsers([other], on: connection).contains(other) else { throw APIError.notFound("No such user.") }
                let (conversation, created) = try await store.directConversation(between: me, and: other, on: connection)
                if created {
                    try await dependencies.announce(
                        ConversationCreated(conversation: conversation.snapshot, actorId: me), on: connection, logger: context.logger)
                }
                return (conversation, created)
            }
            return try Response.json(["conversation": conversation], status: created ? .created : .ok)
        case "group":
            let name = body.name?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let memberIds = body.memberIds ?? []
            var problems: [String: String] = [:]
            if let problem = TextRules.nameProblem(name, maxCharacters: MessageLimits.maxGroupNameCharacters) { problems["name"] = problem }
            // The creator is a member too.
            if Set(memberIds).subtracting([me]).count >= MessageLimits.maxGroupMembers || !memberIds.allSatisfy(MessageLimits.isPlausibleId) {
                problems["memberIds"] = "At most \(MessageLimits.maxGroupMembers - 1) other user ids."
            }
            guard problems.isEmpty else { throw APIError.validation(problems) }
            let wanted = Array(Set(memberIds).subtracting([me]))
            let unknown = try await awaitUsers(wanted)
            guard unknown.isEmpty else {
                throw APIError(
                    .notFound, code: "unknown_user", message: "Some members do not exist.",
                    fields: Dictionary(uniqueKeysWithValues: unknown.sorted().map { ($0, "no such user") }))
            }
            let conversation = try await dependencies.transaction { connection in
                let unknown = Set(wanted).subtracting(try await store.knownUsers(wanted, on: connection))
                guard unknown.isEmpty else { throw APIError(.notFound, code: "unknown_user", message: "Some members do not exist.") }
                let conversation = try await store.createGroup(name: name, creator: me, memberIds: wanted, on: connection)
                try await dependencies.announce(ConversationCreated(conversation: conversation.snapshot, actorId: me), on: connection, logger: context.logger)
                return conversation
            }
            return try Response.json(["conversation": conversation], status: .created)
        default:
            throw APIError.validation(["type": "\"direct\" or \"group\"."])
        }
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let conversations = try await dependencies.postgres.withConnection { connection in
            try await store.conversations(of: me, on: connection)
        }
        return try Response.json(["conversations": conversations])
    }

    @Sendable func details(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let conversation = try await dependencies.postgres.withConnection { connection -> ConversationDetails in
            guard try await store.role(of: me, in: id, on: connection) != nil, let details = try await store.details(of: id, on: connection) else {
                throw Self.notFound
            }
            return details
        }
        return try Response.json(["conversation": conversation])
    }

    @Sendable func rename(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let body = try await request.decodeJSON(as: RenameRequest.self, context: context)
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = TextRules.nameProblem(name, maxCharacters: MessageLimits.maxGroupNameCharacters) {
            throw APIError.validation(["name": problem])
        }
        let conversation = try await dependencies.transaction { connection in
            let current = try await requireGroupAdmin(me, of: id, on: connection)
            try await store.rename(current.id, to: name, on: connection)
            guard let renamed = try await store.details(of: id, on: connection) else { throw Self.notFound }
            try await dependencies.announce(ConversationRenamed(conversation: renamed.snapshot, actorId: me), on: connection, logger: context.logger)
            return renamed
        }
        return try Response.json(["conversation": conversation])
    }

    @Sendable func addMember(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let body = try await request.decodeJSON(as: AddMemberRequest.self, context: context)
        guard MessageLimits.isPlausibleId(body.userId) else { throw APIError.validation(["userId": "The user to add."]) }
        guard try await awaitUsers([body.userId]).isEmpty else {
            // Whether the conversation exists is for members to know.
            _ = try await dependencies.postgres.withConnection { connection in try await requireGroupAdmin(me, of: id, on: connection, locking: false) }
            throw APIError.notFound("No such user.")
        }
        let conversation = try await dependencies.transaction { connection in
            let current = try await requireGroupAdmin(me, of: id, on: connection)
            if current.members.contains(where: { $0.userId == body.userId }) { return current }  // already a member
            guard current.members.count < MessageLimits.maxGroupMembers else {
                throw APIError.conflict("group_full", "A group has at most \(MessageLimits.maxGroupMembers) members.")
            }
            guard try await store.knownUsers([body.userId], on: connection).contains(body.userId) else { throw APIError.notFound("No such user.") }
            guard try await store.addMember(body.userId, to: id, on: connection), let updated = try await store.details(of: id, on: connection) else {
                return current  // already a member
            }
            try await dependencies.announce(
                ConversationMemberAdded(conversation: updated.snapshot, userId: body.userId, actorId: me), on: connection, logger: context.logger)
            return updated
        }
        return try Response.json(["conversation": conversation])
    }

    /// An admin makes a member an admin, or an admin a member; a group keeps at least one admin.
    @Sendable func changeRole(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let target = try memberId(context)
        let body = try await request.decodeJSON(as: ChangeRoleRequest.self, context: context)
        guard body.role == "admin" || body.role == "member" else { throw APIError.validation(["role": "\"admin\" or \"member\"."]) }
        let conversation = try await dependencies.transaction { connection in
            let current = try await requireGroupAdmin(me, of: id, on: connection)
            guard let member = current.members.first(where: { $0.userId == target && $0.deleted != true }) else {
                throw APIError.notFound("Not a member of this conversation.")
            }
            guard member.role != body.role else { return current }
            if body.role == "member", !current.members.contains(where: { $0.role == "admin" && $0.userId != target && $0.deleted != true }) {
                throw APIError.conflict("last_admin", "A group always has an admin: make someone else one first.")
            }
            _ = try await store.setRole(body.role, of: target, in: id, on: connection)
            guard let updated = try await store.details(of: id, on: connection) else { throw Self.notFound }
            try await dependencies.announce(
                ConversationRoleChanged(conversation: updated.snapshot, userId: target, role: body.role, actorId: me), on: connection, logger: context.logger
            )
            return updated
        }
        return try Response.json(["conversation": conversation])
    }

    /// An admin removes anyone; a member removes only themselves (leaving). When the last admin
    /// goes, the longest-standing remaining member becomes one.
    @Sendable func removeMember(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let target = try memberId(context)
        try await dependencies.transaction { connection in
            guard let type = try await store.lock(id, on: connection), let role = try await store.role(of: me, in: id, on: connection) else {
                throw Self.notFound
            }
            guard type == "group" else { throw APIError.badRequest("not_a_group", "Members of a direct conversation cannot change.") }
            guard target == me || role == "admin" else { throw APIError.forbidden("not_admin", "Only an admin can remove other members.") }
            guard try await store.removeMember(target, from: id, on: connection) else {
                throw APIError.notFound("Not a member of this conversation.")
            }
            let successor = try await store.promoteSuccessor(in: id, on: connection)
            guard let updated = try await store.details(of: id, on: connection) else { throw Self.notFound }
            try await dependencies.announce(
                ConversationMemberRemoved(conversation: updated.snapshot, userId: target, actorId: me), on: connection, logger: context.logger)
            if let successor {
                try await dependencies.announce(
                    ConversationRoleChanged(conversation: updated.snapshot, userId: successor, role: "admin", actorId: nil), on: connection,
                    logger: context.logger
                )
            }
        }
        return Response(status: .noContent)
    }

    @Sendable func messages(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let parameters = request.uri.queryParameters
        func seq(_ name: String) throws -> Int64? {
            guard let text = parameters.get(name), !text.isEmpty else { return nil }
            guard let value = Int64(text), value >= 0 else { throw APIError.validation([name: "A seq: a whole number from 0."]) }
            return value
        }
        let after = try seq("after")
        let before = try seq("before")
        let limitText = parameters.get("limit")
        guard let limit = limitText.map({ Int($0) }) ?? 50, (1...MessageLimits.maxHistoryPage).contains(limit) else {
            throw APIError.validation(["limit": "A whole number from 1 to \(MessageLimits.maxHistoryPage)."])
        }
        let page = try await dependencies.postgres.withConnection { connection -> [MessageRecord] in
            guard try await store.role(of: me, in: id, on: connection) != nil else { throw Self.notFound }
            return try await store.messages(in: id, after: after, before: before, limit: limit, on: connection)
        }
        return Response.json(encoded: MessageRecord.json(page, under: "messages"))
    }

    /// The HTTP send path (bots, tests): the same store and idempotency as the websocket path.
    @Sendable func send(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try conversationId(context)
        let body = try await request.decodeJSON(as: SendMessageRequest.self, context: context)
        let problems = MessageLimits.problems(clientMsgId: body.clientMsgId, body: body.body)
        guard problems.isEmpty else { throw APIError.validation(problems) }
        let send = MessageSent(senderId: me, clientMsgId: body.clientMsgId, conversationId: id, body: body.body, instanceId: "")
        let result = try await MessageSending.store([send], store: store, dependencies: dependencies)[0]
        switch result {
        case .stored(let message, _):
            return try Response.json(["message": message], status: .created)
        case .duplicate(let message):
            if message.conversationId != id {
                // The clientMsgId was already used by this sender in another conversation.
                throw APIError.conflict("client_msg_id_reused", "This clientMsgId was already used for another conversation.")
            }
            return try Response.json(["message": message], status: .ok)
        case .notMember:
            throw Self.notFound
        case .peerDeleted:
            throw APIError.forbidden("peer_deleted", "The other person deleted their account; this conversation is read-only.")
        }
    }

    // MARK: Helpers

    private func conversationId(_ context: ServiceRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard MessageLimits.isPlausibleId(id) else { throw Self.notFound }
        return id
    }

    private func memberId(_ context: ServiceRequestContext) throws -> String {
        let id = try context.parameters.require("userId")
        guard MessageLimits.isPlausibleId(id) else { throw APIError.notFound("Not a member of this conversation.") }
        return id
    }

    /// Of `userIds`, those that are not live users here: never heard of after waiting for them
    /// (bounded), or deleted (at once).
    private func awaitUsers(_ userIds: [String]) async throws -> Set<String> {
        guard !userIds.isEmpty else { return [] }
        var unheard = Set(userIds)
        _ = try await ReadYourWrites.wait {
            unheard.subtract(try await dependencies.postgres.withConnection { try await store.heardOf(Array(unheard), on: $0) })
            return unheard.isEmpty
        }
        // Heard of but deleted is as unknown as never heard of: only the wait differs.
        let live = try await dependencies.postgres.withConnection { try await store.knownUsers(userIds, on: $0) }
        return Set(userIds).subtracting(live)
    }

    /// The group's details when `userId` is its admin, taking the conversation's lock first (as
    /// every membership change does): 404 for a non-member, 400 for a direct conversation, 403 for
    /// a member who is not an admin.
    private func requireGroupAdmin(
        _ userId: String, of conversationId: String, on connection: PostgresConnection, locking: Bool = true
    ) async throws -> ConversationDetails {
        if locking { guard try await store.lock(conversationId, on: connection) != nil else { throw Self.notFound } }
        guard let role = try await store.role(of: userId, in: conversationId, on: connection),
            let details = try await store.details(of: conversationId, on: connection)
        else { throw Self.notFound }
        guard details.type == "group" else { throw APIError.badRequest("not_a_group", "Only groups have names and changing members.") }
        guard role == "admin" else { throw APIError.forbidden("not_admin", "Only an admin can do this.") }
        return details
    }
}
