import Foundation
import Hummingbird
import JWTKit
import Logging

/// Requires a valid access token, from `Authorization: Bearer` or the `access_token` cookie, and
/// puts the caller's `Identity` in the context. No token is 401 `unauthenticated`; a bad, expired
/// or foreign token is 401 `invalid_token`; the token of a session that ended is 401
/// `session_ended`.
public struct AuthenticationMiddleware<Context: AuthenticatedRequestContext>: RouterMiddleware {
    public static var cookieName: String { "access_token" }

    private let verifier: AccessTokenVerifier

    public init(verifier: AccessTokenVerifier) {
        self.verifier = verifier
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let identity = try await Self.authenticate(request.headers, verifier: verifier)
        context.identity = identity
        // Every later log line of this request says whose it was.
        context.logger[metadataKey: "user"] = .string(identity.userId)
        return try await next(request, context)
    }

    /// The identity behind a request's headers; shared with websocket upgrades.
    public static func authenticate(_ headers: HTTPFields, verifier: AccessTokenVerifier) async throws(APIError) -> Identity {
        guard let (token, credential) = token(in: headers) else { throw APIError.unauthenticated() }
        guard let claims = await verifier.verify(token) else { throw APIError.invalidToken }
        guard await !verifier.isRevoked(claims) else { throw APIError.sessionEnded }
        return Identity(userId: claims.sub.value, sessionId: claims.sid, credential: credential)
    }

    static func token(in headers: HTTPFields) -> (String, Identity.Credential)? {
        if let authorization = headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return (String(parts[1]).trimmingCharacters(in: .whitespaces), .bearer)
            }
        }
        if let token = Cookies(from: headers[values: .cookie])[cookieName]?.value, !token.isEmpty {
            return (token, .cookie)
        }
        return nil
    }
}
