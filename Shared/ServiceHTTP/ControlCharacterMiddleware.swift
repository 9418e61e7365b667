import EventContracts
import Foundation
import Hummingbird

/// Refuses a request whose path or query parameters hold a control character (U+0000 and the
/// like, percent-encoded or not) with 400 `validation_failed` naming the parameter, before any
/// route or store sees it (the public contract). JSON bodies are checked where they are decoded.
public struct ControlCharacterMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if TextRules.hasControlCharacters(request.uri.path.removingPercentEncoding ?? request.uri.path) {
            throw APIError.validation(["path": "No control characters."])
        }
        var problems: [String: String] = [:]
        for (name, value) in request.uri.queryParameters where TextRules.hasControlCharacters(String(name)) || TextRules.hasControlCharacters(String(value)) {
            problems[TextRules.hasControlCharacters(String(name)) ? "query" : String(name)] = "No control characters."
        }
        guard problems.isEmpty else { throw APIError.validation(problems) }
        return try await next(request, context)
    }
}
