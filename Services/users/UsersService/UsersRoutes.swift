import EventContracts
import Foundation
import Hummingbird
import ServiceHTTP
import ServiceRuntime

struct UpdateProfileRequest: APIRequestBody {
    static let fields: Set<String> = ["displayName", "about"]
    let displayName: String?
    let about: String?
}

/// `/api/users`: search, profiles, `PATCH /me`, contacts. Every route needs a signed-in caller.
struct UsersRoutes: Sendable {
    let dependencies: ServiceDependencies
    let store: UsersStore
    let cache: UserQueryCache

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("/api/users").add(middleware: AuthenticationMiddleware(verifier: dependencies.tokenVerifier))
        group.get(use: search)
        group.get("/me", use: me)
        group.patch("/me", use: updateMe)
        group.get("/me/contacts", use: contacts)
        group.put("/me/contacts/:userId", use: addContact)
        group.delete("/me/contacts/:userId", use: removeContact)
        group.get("/:id", use: profile)
    }

    @Sendable func search(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        _ = try context.requireIdentity()
        let query = request.uri.queryParameters.get("query") ?? ""
        guard query.count <= 64 else { throw APIError.validation(["query": "At most 64 characters."]) }
        let limitText = request.uri.queryParameters.get("limit")
        guard let limit = limitText.map({ Int($0) }) ?? 20, (1...100).contains(limit) else {
            throw APIError.validation(["limit": "A whole number from 1 to 100."])
        }
        let cursorText = request.uri.queryParameters.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        let cursor = try cursorText.map { text throws(APIError) in try UserCursor(encoded: text) }
        let key = "\(limit):\(cursorText ?? ""):\(query.lowercased())"
        let (page, outcome) = try await cache.value(for: key, as: UserPage.self) {
            try await store.search(query: query, limit: limit, after: cursor, on: dependencies.postgres)
        }
        var response = try Response.json(page)
        response.headers[.init("X-Cache")!] = outcome.rawValue
        return response
    }

    @Sendable func me(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        try await profileResponse(id: try context.requireIdentity().userId)
    }

    @Sendable func profile(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        _ = try context.requireIdentity()
        let id = try context.parameters.require("id")
        guard MessageLimits.isPlausibleId(id) else { throw APIError.notFound("No such user.") }
        return try await profileResponse(id: id)
    }

    @Sendable func updateMe(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        // Signed up a moment ago: the registration may still be on its way here.
        _ = try await awaitUser(identity.userId)
        let body = try await request.decodeJSON(as: UpdateProfileRequest.self, context: context)
        let displayName = body.displayName?.trimmingCharacters(in: .whitespacesAndNewlines)
        var problems: [String: String] = [:]
        if let displayName, let problem = TextRules.nameProblem(displayName, maxCharacters: 64) { problems["displayName"] = problem }
        if let about = body.about, about.count > 280 { problems["about"] = "At most 280 characters." }
        if displayName == nil && body.about == nil { problems["displayName"] = "Give displayName or about (or both)." }
        guard problems.isEmpty else { throw APIError.validation(problems) }

        let updated = try await dependencies.transaction { connection -> UserProfile? in
            guard let profile = try await store.updateProfile(id: identity.userId, displayName: displayName, about: body.about, on: connection) else {
                return nil
            }
            let event = UserUpdated(userId: profile.id, username: profile.username, displayName: profile.displayName, about: profile.about)
            try await dependencies.announce(event, on: connection, logger: context.logger)
            return profile
        }
        guard let updated else { throw APIError.notFound("Your profile is not known here yet; try again in a moment.") }
        await cache.invalidate()
        return try Response.json(["user": updated])
    }

    @Sendable func contacts(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try Response.json(["contacts": try await store.contacts(of: identity.userId, on: dependencies.postgres)])
    }

    @Sendable func addContact(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let contactId = try context.parameters.require("userId")
        guard contactId != identity.userId else {
            throw APIError.badRequest("cannot_add_self", "You cannot add yourself as a contact.")
        }
        guard MessageLimits.isPlausibleId(contactId), try await awaitUser(contactId), try await awaitUser(identity.userId) else {
            throw APIError.notFound("No such user.")
        }
        // Added and announced together; adding an existing contact again announces nothing.
        let addition = try await dependencies.transaction { connection in
            let addition = try await store.addContact(ownerId: identity.userId, contactId: contactId, on: connection)
            if addition == .added {
                let event = ContactAdded(ownerId: identity.userId, contactId: contactId)
                try await dependencies.announce(event, on: connection, logger: context.logger)
            }
            return addition
        }
        guard addition != .unknownUser else { throw APIError.notFound("No such user.") }
        let contact = try await store.contacts(of: identity.userId, only: contactId, on: dependencies.postgres).first
        return try Response.json(["contact": contact])
    }

    @Sendable func removeContact(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let contactId = try context.parameters.require("userId")
        guard contactId.count <= 64 else { return Response(status: .noContent) }
        try await dependencies.transaction { connection in
            if try await store.removeContact(ownerId: identity.userId, contactId: contactId, on: connection) {
                let event = ContactRemoved(ownerId: identity.userId, contactId: contactId)
                try await dependencies.announce(event, on: connection, logger: context.logger)
            }
        }
        return Response(status: .noContent)
    }

    /// A profile, waiting (bounded) for a user who signed up a moment ago.
    private func profileResponse(id: String) async throws -> Response {
        guard try await awaitUser(id), let found = try await store.profile(id: id, on: dependencies.postgres) else {
            throw APIError.notFound("No such user.")
        }
        return try Response.json(["user": found])
    }

    /// Whether `id` is a live user here, after waiting (bounded) for a registration still on its
    /// way; a deleted account is answered at once.
    private func awaitUser(_ id: String) async throws -> Bool {
        _ = try await ReadYourWrites.wait { try await store.hasHeardOf(id, on: dependencies.postgres) }
        return try await store.profile(id: id, on: dependencies.postgres) != nil
    }
}
