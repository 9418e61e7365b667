import Hummingbird

/// The Origin allowlist (the public contract): browsers send `Origin`, so a cookie-authenticated unsafe
/// request or websocket upgrade from another site is refused. Bearer-token clients are not
/// browsers and carry their credential explicitly, so they need no Origin.
public struct OriginPolicy: Sendable {
    public let allowedOrigins: Set<String>

    public init(allowedOrigins: some Sequence<String>) {
        self.allowedOrigins = Set(allowedOrigins.map { $0.lowercased() })
    }

    /// Whether a request with these headers may change state (or upgrade to a websocket).
    /// - An `Origin` that is present must be on the list, whatever the credential.
    /// - Without `Origin`, only requests that carry no cookie credential pass: a bearer token, or
    ///   no credential at all (signup and signin, which are not ambient-credential requests).
    public func allows(_ headers: HTTPFields) -> Bool {
        if let origin = headers[.origin] {
            return allowedOrigins.contains(origin.lowercased())
        }
        return !carriesCookieCredential(headers)
    }

    private func carriesCookieCredential(_ headers: HTTPFields) -> Bool {
        if let authorization = headers[.authorization], authorization.lowercased().hasPrefix("bearer ") {
            return false
        }
        return headers[.cookie] != nil
    }
}

/// Applies `OriginPolicy` to every unsafe method (POST, PUT, PATCH, DELETE): 403 `origin_not_allowed`.
public struct OriginCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    private let policy: OriginPolicy

    public init(policy: OriginPolicy) {
        self.policy = policy
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch request.method {
        case .get, .head, .options:
            break
        default:
            guard policy.allows(request.headers) else { throw APIError.originNotAllowed }
        }
        return try await next(request, context)
    }
}
