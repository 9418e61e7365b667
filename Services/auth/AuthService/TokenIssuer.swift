import Crypto
import Foundation
import JWTKit
import ServiceHTTP

/// Signs access tokens (ES256, the private key lives only in auth) and mints refresh tokens.
struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection
    let accessTokenLifetime: Duration
    let refreshTokenLifetime: Duration

    init(configuration: AuthConfiguration) async throws {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PrivateKey(pem: configuration.privateKeyPEM))
        self.keys = keys
        self.accessTokenLifetime = configuration.accessTokenLifetime
        self.refreshTokenLifetime = configuration.refreshTokenLifetime
    }

    func accessToken(userId: String, sessionId: String) async throws -> String {
        let lifetime = TimeInterval(accessTokenLifetime.components.seconds)
        return try await keys.sign(AccessTokenClaims(userId: userId, sessionId: sessionId, lifetime: lifetime))
    }

    /// A new random refresh token and the hash that is stored in its place.
    func refreshToken() -> (token: String, hash: String) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = Data(bytes).base64URLEncodedString
        return (token, Self.hash(token))
    }

    static func hash(_ refreshToken: String) -> String {
        SHA256.hash(data: Data(refreshToken.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
