import EventContracts
import Foundation
import Hummingbird
import HummingbirdBcrypt
import Logging
import NIOPosix
import ServiceHTTP
import ServiceRuntime

/// `/api/auth`: signup, signin, refresh, signout, currentuser, account deletion.
struct AuthRoutes: Sendable {
    let dependencies: ServiceDependencies
    let configuration: AuthConfiguration
    let store: AuthStore
    let issuer: TokenIssuer
    let limiter: LoginRateLimiter
    let passwords: PasswordHasher
    /// Compared against when the login is unknown, so both paths take a bcrypt's time.
    let dummyHash: String

    static let refreshCookie = "refresh_token"

    func add(to router: Router<ServiceRequestContext>) {
        let group = router.group("/api/auth")
        group.post("/signup", use: signup)
        group.post("/signin", use: signin)
        group.post("/refresh", use: refresh)
        group.post("/signout", use: signout)
        let authenticated = group.group().add(middleware: AuthenticationMiddleware(verifier: dependencies.tokenVerifier))
        authenticated.get("/currentuser", use: currentUser)
        authenticated.delete("/account", use: deleteAccount)
    }

    // MARK: Handlers

    @Sendable func signup(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SignupRequest.self, context: context)
        let username = body.username.lowercased()
        var problems: [String: String] = [:]
        problems["username"] = Validation.username(username)
        problems["email"] = Validation.email(body.email)
        problems["password"] = Validation.password(body.password)
        guard problems.isEmpty else { throw APIError.validation(problems) }

        let hash = try await passwords.hash(body.password)
        let now = Date()
        let user = AuthUser(id: EventID.make(at: now), username: username, email: body.email, displayName: username, createdAt: now)
        let sessionId = EventID.make(at: now)
        let refresh = issuer.refreshToken()
        try await dependencies.transaction { connection in
            try await store.insertUser(user, passwordHash: hash, on: connection)
            try await store.createSession(id: sessionId, userId: user.id, on: connection)
            try await store.storeRefreshToken(hash: refresh.hash, sessionId: sessionId, expiresAt: refreshExpiry(from: now), on: connection)
            let registered = UserRegistered(
                userId: user.id, username: user.username, email: user.email, displayName: user.displayName, createdAt: user.createdAt)
            try await dependencies.announce(registered, on: connection, logger: context.logger)
            try await dependencies.announce(UserLoggedIn(userId: user.id, sessionId: sessionId), on: connection, logger: context.logger)
        }
        let accessToken = try await issuer.accessToken(userId: user.id, sessionId: sessionId)
        var response = try Response.json(SignedIn(user: user, accessToken: accessToken), status: .created)
        setSessionCookies(on: &response, accessToken: accessToken, refreshToken: refresh.token)
        return response
    }

    @Sendable func signin(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(as: SigninRequest.self, context: context)
        guard !body.login.isEmpty, body.login.count <= 254, body.password.count <= 128 else {
            throw Self.invalidCredentials
        }
        let address = dependencies.http.trustedProxies.clientAddress(
            peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[.init("X-Forwarded-For")!]
        )
        // Failures count per account, whichever login string (username or email) names it.
        let found = try await store.credentials(forLogin: body.login, on: dependencies.postgres)
        let account = found.map { "user:\($0.0.id)" } ?? "login:\(body.login.lowercased())"
        if let wait = await limiter.begin(account: account, address: address) {
            throw APIError.tooManyRequests(retryAfter: wait)
        }
        let matches = try await passwords.verify(body.password, against: found?.1 ?? dummyHash)
        guard let (user, storedHash) = found, matches else { throw Self.invalidCredentials }
        await limiter.succeeded(account: account, address: address)
        if !PasswordHasher.isCurrent(storedHash) {
            try await store.updatePasswordHash(userId: user.id, hash: try await passwords.hash(body.password), on: dependencies.postgres)
        }

        let now = Date()
        let sessionId = EventID.make(at: now)
        let refresh = issuer.refreshToken()
        try await dependencies.transaction { connection in
            try await store.createSession(id: sessionId, userId: user.id, on: connection)
            try await store.storeRefreshToken(hash: refresh.hash, sessionId: sessionId, expiresAt: refreshExpiry(from: now), on: connection)
            try await dependencies.announce(UserLoggedIn(userId: user.id, sessionId: sessionId), on: connection, logger: context.logger)
        }
        let accessToken = try await issuer.accessToken(userId: user.id, sessionId: sessionId)
        var response = try Response.json(SignedIn(user: user, accessToken: accessToken))
        setSessionCookies(on: &response, accessToken: accessToken, refreshToken: refresh.token)
        return response
    }

    /// Rotates the refresh token. Presenting one that was already used revokes the whole session:
    /// either the user or a thief holds a copy, and only a fresh sign-in can tell them apart.
    @Sendable func refresh(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let presented = request.cookies[Self.refreshCookie]?.value, !presented.isEmpty, presented.count <= 256 else {
            throw APIError.unauthenticated("No refresh token.")
        }
        let now = Date()
        let next = issuer.refreshToken()
        let outcome = try await dependencies.transaction { connection -> RefreshTokenState in
            let state = try await store.consumeRefreshToken(hash: TokenIssuer.hash(presented), on: connection)
            switch state {
            case .valid(let sessionId, _):
                try await store.storeRefreshToken(hash: next.hash, sessionId: sessionId, expiresAt: refreshExpiry(from: now), on: connection)
            case .reused(let sessionId, let userId):
                if try await store.revokeSession(id: sessionId, userId: userId, on: connection) {
                    await revokeNow(sessionId: sessionId)
                    try await dependencies.announce(UserSignedOut(userId: userId, sessionId: sessionId), on: connection, logger: context.logger)
                }
            case .invalid:
                break
            }
            return state
        }
        switch outcome {
        case .valid(let sessionId, let userId):
            guard let user = try await store.user(id: userId, sessionId: sessionId, on: dependencies.postgres) else {
                throw APIError.unauthenticated("The session has ended.")
            }
            let accessToken = try await issuer.accessToken(userId: userId, sessionId: sessionId)
            var response = try Response.json(SignedIn(user: user, accessToken: accessToken))
            setSessionCookies(on: &response, accessToken: accessToken, refreshToken: next.token)
            return response
        case .reused:
            context.logger.warning("refresh token reused; session revoked")
            var response = try APIError(
                .unauthorized, code: "refresh_token_reused", message: "This refresh token was already used; the session has been ended. Sign in again."
            )
            .response(from: request, context: context)
            clearCookies(on: &response)
            return response
        case .invalid:
            throw APIError.unauthenticated("The refresh token is invalid or expired.")
        }
    }

    /// Ends the session of the access token (or, when it has expired, of the refresh cookie).
    @Sendable func signout(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        var session: (id: String, userId: String)?
        if let identity = try? await AuthenticationMiddleware<ServiceRequestContext>.authenticate(request.headers, verifier: dependencies.tokenVerifier) {
            session = (identity.sessionId, identity.userId)
        }
        if session == nil, let presented = request.cookies[Self.refreshCookie]?.value, presented.count <= 256 {
            session = try await store.session(ofRefreshToken: TokenIssuer.hash(presented), on: dependencies.postgres)
        }
        guard let session else { throw APIError.unauthenticated() }
        try await dependencies.transaction { connection in
            if try await store.revokeSession(id: session.id, userId: session.userId, on: connection) {
                try await dependencies.announce(UserSignedOut(userId: session.userId, sessionId: session.id), on: connection, logger: context.logger)
            }
        }
        await revokeNow(sessionId: session.id)
        var response = Response(status: .noContent)
        clearCookies(on: &response)
        return response
    }

    @Sendable func currentUser(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        guard let user = try await store.user(id: identity.userId, sessionId: identity.sessionId, on: dependencies.postgres) else {
            throw APIError.unauthenticated("The session has ended.")
        }
        return try Response.json(["user": user])
    }

    @Sendable func deleteAccount(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let body = try await request.decodeJSON(as: DeleteAccountRequest.self, context: context)
        // Guesses of the password here count with sign-in's: a stolen token cannot try freely.
        let account = "user:\(identity.userId)"
        let address = dependencies.http.trustedProxies.clientAddress(
            peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[.init("X-Forwarded-For")!]
        )
        if let wait = await limiter.begin(account: account, address: address) {
            throw APIError.tooManyRequests(retryAfter: wait)
        }
        guard body.password.count <= 128,
            let (_, hash) = try await store.credentials(forUser: identity.userId, on: dependencies.postgres),
            try await passwords.verify(body.password, against: hash)
        else { throw Self.invalidCredentials }
        await limiter.succeeded(account: account, address: address)
        let deletedAt = Date()
        try await dependencies.transaction { connection in
            try await store.deleteUser(id: identity.userId, on: connection)
            try await dependencies.announce(UserDeleted(userId: identity.userId), on: connection, logger: context.logger)
        }
        do {
            try await dependencies.revocations.revokeUser(identity.userId, at: deletedAt, lifetime: configuration.accessTokenLifetime)
        } catch {
            context.logger.warning("account deletion not yet in the revocation view; its event will record it", metadata: ["error": "\(error)"])
        }
        var response = Response(status: .noContent)
        clearCookies(on: &response)
        return response
    }

    // MARK: Helpers

    /// Records an ended session in the shared revocation view at once, so every service refuses
    /// its token from the next request. When Redis is away, `RevocationsHandler` records it from
    /// the `user.signed_out` event once Redis is back.
    private func revokeNow(sessionId: String) async {
        do {
            try await dependencies.revocations.revoke(sessionId: sessionId, lifetime: configuration.accessTokenLifetime)
        } catch {
            dependencies.logger.warning("session end not yet in the revocation view; its event will record it", metadata: ["error": "\(error)"])
        }
    }

    static let invalidCredentials = APIError(.unauthorized, code: "invalid_credentials", message: "The login or password is wrong.")

    struct SignedIn: Encodable {
        let user: AuthUser
        let accessToken: String
    }

    private func refreshExpiry(from now: Date) -> Date {
        now.addingTimeInterval(TimeInterval(configuration.refreshTokenLifetime.components.seconds))
    }

    private func setSessionCookies(on response: inout Response, accessToken: String, refreshToken: String) {
        response.setCookie(
            Cookie(
                name: AuthenticationMiddleware<ServiceRequestContext>.cookieName, value: accessToken,
                maxAge: Int(configuration.accessTokenLifetime.components.seconds), path: "/",
                secure: configuration.secureCookies, httpOnly: true, sameSite: .lax
            ))
        // The refresh token only ever travels to auth.
        response.setCookie(
            Cookie(
                name: Self.refreshCookie, value: refreshToken,
                maxAge: Int(configuration.refreshTokenLifetime.components.seconds), path: "/api/auth",
                secure: configuration.secureCookies, httpOnly: true, sameSite: .strict
            ))
    }

    private func clearCookies(on response: inout Response) {
        response.setCookie(
            Cookie(
                name: AuthenticationMiddleware<ServiceRequestContext>.cookieName, value: "", expires: Date(timeIntervalSince1970: 0),
                maxAge: 0, path: "/", secure: configuration.secureCookies, httpOnly: true, sameSite: .lax
            ))
        response.setCookie(
            Cookie(
                name: Self.refreshCookie, value: "", expires: Date(timeIntervalSince1970: 0),
                maxAge: 0, path: "/api/auth", secure: configuration.secureCookies, httpOnly: true, sameSite: .strict
            ))
    }
}
