import Foundation
import JWTKit

/// The claims of a SwiftChat access token. Signed by auth alone (ES256); the other services hold
/// only the public key.
public struct AccessTokenClaims: JWTPayload, Equatable {
    public static let issuer = "swiftchat-auth"

    public var sub: SubjectClaim
    public var sid: String
    public var iss: IssuerClaim
    public var iat: IssuedAtClaim
    public var exp: ExpirationClaim

    public init(userId: String, sessionId: String, issuedAt: Date = Date(), lifetime: TimeInterval) {
        self.sub = SubjectClaim(value: userId)
        self.sid = sessionId
        self.iss = IssuerClaim(value: Self.issuer)
        self.iat = IssuedAtClaim(value: issuedAt)
        self.exp = ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime))
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard iss.value == Self.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "unknown issuer")
        }
    }
}

/// Verifies access tokens with the public key. Only the algorithm of that key (ES256) is
/// accepted: `alg: none`, HMAC tricks and other keys fail verification. With `revocations`, a
/// token of a session that ended (signout, refresh-token reuse, account deletion) is refused too.
public struct AccessTokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    public private(set) var revocations: (any SessionRevocations)?

    public init(publicKeyPEM: String) async throws {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PublicKey(pem: publicKeyPEM))
        self.keys = keys
    }

    /// This verifier, also refusing the tokens of revoked sessions.
    public func checkingRevocations(_ revocations: any SessionRevocations) -> AccessTokenVerifier {
        var verifier = self
        verifier.revocations = revocations
        return verifier
    }

    /// The claims of a valid token whose signature and expiry hold; nil otherwise.
    public func verify(_ token: String) async -> AccessTokenClaims? {
        // A JWT is small; anything huge is rejected before any parsing.
        guard token.utf8.count <= 4096 else { return nil }
        return try? await keys.verify(token, as: AccessTokenClaims.self)
    }

    /// Whether the session of these claims has ended everywhere.
    public func isRevoked(_ claims: AccessTokenClaims) async -> Bool {
        await revocations?.isRevoked(sessionId: claims.sid, userId: claims.sub.value, issuedAt: claims.iat.value) ?? false
    }
}

/// Which sessions have ended before their access tokens expire. Every service checks it on each
/// authenticated request and websocket upgrade (the public contract: a session ends everywhere at once).
public protocol SessionRevocations: Sendable {
    func isRevoked(sessionId: String, userId: String, issuedAt: Date) async -> Bool
    /// Of these open sessions (each a live socket, opened while its session was live), the ones
    /// that have ended since: the session signed out, or its account was deleted. One round trip.
    func ended(among sessions: [(sessionId: String, userId: String)]) async -> Set<String>
}
