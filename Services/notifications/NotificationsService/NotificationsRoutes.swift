import Foundation
import Hummingbird
import ServiceHTTP
import ServiceRuntime

/// `/api/notifications`: a user sees and changes only their own; another user's id is 404.
struct NotificationsRoutes: Sendable {
    let dependencies: ServiceDependencies
    let store: NotificationsStore

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("/api/notifications").add(middleware: AuthenticationMiddleware(verifier: dependencies.tokenVerifier))
        group.get(use: list)
        group.post("/read-all", use: readAll)
        group.post("/:id/read", use: read)
    }

    @Sendable func list(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let query = request.uri.queryParameters
        var problems: [String: String] = [:]
        let unread = query.get("unread")
        if let unread, !["true", "false"].contains(unread) { problems["unread"] = "true or false." }
        let limit = query.get("limit").map { Int($0) } ?? 20
        if limit == nil || !(1...100).contains(limit!) { problems["limit"] = "A whole number from 1 to 100." }
        guard problems.isEmpty, let limit else { throw APIError.validation(problems) }
        let cursorText = query.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        let cursor = cursorText.flatMap { Int64($0) }
        if cursorText != nil, (cursor ?? 0) <= 0 { throw APIError.invalidCursor }
        let page = try await store.page(of: me, unreadOnly: unread == "true", limit: limit, before: cursor, on: dependencies.postgres)
        return try Response.json(page)
    }

    @Sendable func read(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        let id = try context.parameters.require("id")
        guard id.count <= 64, let notification = try await store.markRead(id: id, of: me, on: dependencies.postgres) else {
            throw APIError.notFound("No such notification.")
        }
        return try Response.json(["notification": notification])
    }

    @Sendable func readAll(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let me = try context.requireIdentity().userId
        _ = try await store.markAllRead(of: me, on: dependencies.postgres)
        return Response(status: .noContent)
    }
}
