import Foundation
import Hummingbird
import Logging

/// Maps every error to the API error shape: `APIError` passes through, Hummingbird's own errors
/// keep their status with a snake_case code, JSON decoding errors become 400 (naming the field, never
/// echoing internals), and anything else is a logged 500 with a generic message.
public struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            throw Self.apiError(for: error, logger: context.logger)
        }
    }

    static func apiError(for error: any Error, logger: Logger) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as DecodingError:
            return APIError(.badRequest, code: "invalid_body", message: Self.describe(error))
        case let error as HTTPError:
            return APIError(error.status, code: Self.code(for: error.status), message: Self.message(for: error.status))
        case let error as any HTTPResponseError:
            return APIError(error.status, code: Self.code(for: error.status), message: Self.message(for: error.status))
        default:
            logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return .internalError
        }
    }

    private static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .contentTooLarge: "payload_too_large"
        case .unsupportedMediaType: "unsupported_media_type"
        case .unauthorized: "unauthenticated"
        case .forbidden: "forbidden"
        case .tooManyRequests: "rate_limited"
        case .badRequest: "bad_request"
        default: status.code >= 500 ? "internal_error" : "bad_request"
        }
    }

    private static func message(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "Not found."
        case .methodNotAllowed: "This method is not allowed here."
        case .contentTooLarge: "The request body is too large."
        case .unsupportedMediaType: "Send JSON with Content-Type: application/json."
        case .unauthorized: "Sign in first."
        default: status.code >= 500 ? "Something went wrong on our side." : "The request is invalid."
        }
    }

    /// A short, safe description of why a body did not decode.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let joined = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return joined.isEmpty ? "the body" : "'\(joined)'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "Missing field \(path(context.codingPath + [key]))."
        case .typeMismatch(_, let context):
            return "Wrong type for \(path(context.codingPath))."
        case .valueNotFound(_, let context):
            return "Missing value for \(path(context.codingPath))."
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "The body is not valid JSON." : "Invalid value for \(path(context.codingPath))."
        @unknown default:
            return "The body could not be read."
        }
    }
}
