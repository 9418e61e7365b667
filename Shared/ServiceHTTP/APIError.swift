import Foundation
import Hummingbird

/// An error as the public API shows it: `{"error": {"code", "message", "fields"?}}` with its status
/// (the public contract). Routes throw these; `ErrorMiddleware` turns every other error into one.
public struct APIError: HTTPResponseError, Sendable, Equatable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let fields: [String: String]?
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, fields: [String: String]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(ErrorBody(error: .init(code: code, message: message, fields: fields)))
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The wire form of an error (the public contract).
struct ErrorBody: Codable, Equatable {
    struct Detail: Codable, Equatable {
        let code: String
        let message: String
        let fields: [String: String]?
    }
    let error: Detail
}

extension APIError {
    public static func badRequest(_ code: String = "bad_request", _ message: String) -> APIError {
        APIError(.badRequest, code: code, message: message)
    }

    /// 400 with the offending fields, e.g. `["username": "3 to 32 of a-z, 0-9, _ and ."]`.
    public static func validation(_ fields: [String: String]) -> APIError {
        APIError(.badRequest, code: "validation_failed", message: "Some fields are invalid.", fields: fields)
    }

    public static func unauthenticated(_ message: String = "Sign in first.") -> APIError {
        APIError(.unauthorized, code: "unauthenticated", message: message)
    }

    public static let invalidToken = APIError(.unauthorized, code: "invalid_token", message: "The access token is invalid or expired.")

    public static let sessionEnded = APIError(.unauthorized, code: "session_ended", message: "This session has ended; sign in again.")

    public static func forbidden(_ code: String = "forbidden", _ message: String) -> APIError {
        APIError(.forbidden, code: code, message: message)
    }

    public static let originNotAllowed = APIError(.forbidden, code: "origin_not_allowed", message: "Requests from this origin are not allowed.")

    public static func notFound(_ message: String = "Not found.") -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    public static func conflict(_ code: String = "conflict", _ message: String) -> APIError {
        APIError(.conflict, code: code, message: message)
    }

    /// A `cursor` this service did not issue.
    public static let invalidCursor = APIError(.badRequest, code: "invalid_cursor", message: "The cursor is not one this service issued.")

    public static let payloadTooLarge = APIError(.contentTooLarge, code: "payload_too_large", message: "The request body is too large.")

    public static let unsupportedMediaType = APIError(
        .unsupportedMediaType, code: "unsupported_media_type", message: "Send JSON with Content-Type: application/json.")

    public static func tooManyRequests(retryAfter seconds: Int) -> APIError {
        APIError(.tooManyRequests, code: "rate_limited", message: "Too many attempts; try again later.", headers: [.retryAfter: String(max(1, seconds))])
    }

    public static let internalError = APIError(.internalServerError, code: "internal_error", message: "Something went wrong on our side.")

    public static let upgradeRequired = APIError(.upgradeRequired, code: "upgrade_required", message: "This path is a websocket: upgrade to it.")

    public static func tooManySockets(limit: Int) -> APIError {
        APIError(
            .tooManyRequests, code: "too_many_sockets", message: "You have \(limit) sockets open on this stream already; close one first.",
            headers: [.retryAfter: "5"])
    }

    public static let unavailable = APIError(.serviceUnavailable, code: "unavailable", message: "A dependency is unavailable; try again shortly.")
}
