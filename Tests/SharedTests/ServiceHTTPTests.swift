import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import ServiceHTTP
import StackTesting
import Testing

@Suite("HTTP foundation")
struct ServiceHTTPTests {
    struct Note: Codable {
        let title: String
        let stars: Int
    }

    struct ErrorReply: Decodable {
        struct Detail: Decodable {
            let code: String
            let message: String
            let fields: [String: String]?
        }
        let error: Detail
    }

    struct Keys {
        let signer = JWTKeyCollection()
        let verifier: AccessTokenVerifier
        let privateKey: ES256PrivateKey

        init() async throws {
            privateKey = ES256PrivateKey()
            await signer.add(ecdsa: privateKey)
            verifier = try await AccessTokenVerifier(publicKeyPEM: privateKey.publicKey.pemRepresentation)
        }

        func token(user: String = "user-1", session: String = "session-1", lifetime: TimeInterval = 300, issuedAt: Date = Date()) async throws -> String {
            try await signer.sign(AccessTokenClaims(userId: user, sessionId: session, issuedAt: issuedAt, lifetime: lifetime))
        }
    }

    static let origin = "http://127.0.0.1:8080"

    func makeApplication(keys: Keys, ready: Bool = true) -> some ApplicationProtocol {
        let router = makeServiceRouter(
            configuration: HTTPConfiguration(port: 0),
            readiness: ReadinessChecks([ReadinessCheck("always") { true }, ReadinessCheck("dependency") { ready }])
        )
        router.post("/public/notes") { request, context -> String in
            let note = try await request.decodeJSON(as: Note.self, context: context)
            return "\(note.title) \(note.stars)"
        }
        router.get("/public/crash") { _, _ -> String in
            struct DatabaseFailure: Error { let sql = "SELECT secret FROM users" }
            throw DatabaseFailure()
        }
        let protected = router.group("/private").add(middleware: AuthenticationMiddleware(verifier: keys.verifier))
        protected.get("/me") { _, context -> String in
            try context.requireIdentity().userId
        }
        protected.post("/notes") { _, context -> String in
            try context.requireIdentity().sessionId
        }
        return Application(router: router)
    }

    /// The `error.code` of an error-shaped body; nil when the body is not one.
    func errorCode(_ response: TestResponse) -> String? {
        try? JSONDecoder().decode(ErrorReply.self, from: Data(response.body.readableBytesView)).error.code
    }

    // MARK: Error shape

    @Test("bad input gets the error shape and the right 4xx, never a 500")
    func badInputIsNeverA500() async throws {
        let keys = try await Keys()
        let json: HTTPFields = [.contentType: "application/json"]
        let cases: [(String, HTTPFields, String, HTTPResponse.Status, String)] = [
            ("malformed JSON", json, #"{"title": "#, .badRequest, "invalid_body"),
            ("wrong type", json, #"{"title": "a", "stars": "many"}"#, .badRequest, "invalid_body"),
            ("missing field", json, #"{"title": "a"}"#, .badRequest, "invalid_body"),
            ("not an object", json, #"[1,2,3]"#, .badRequest, "invalid_body"),
            ("SQL-looking", json, #"{"title": "'; DROP TABLE users; --", "stars": "1 OR 1=1"}"#, .badRequest, "invalid_body"),
            ("no content type", [:], #"{"title": "a", "stars": 1}"#, .unsupportedMediaType, "unsupported_media_type"),
            ("wrong content type", [.contentType: "text/plain"], #"{"title": "a", "stars": 1}"#, .unsupportedMediaType, "unsupported_media_type"),
            ("oversize", json, #"{"title": ""# + String(repeating: "x", count: 70_000) + #"", "stars": 1}"#, .contentTooLarge, "payload_too_large"),
        ]
        try await makeApplication(keys: keys).test(.router) { client in
            for (name, headers, body, status, code) in cases {
                try await client.execute(uri: "/public/notes", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == status, "\(name)")
                    #expect(errorCode(response) == code, "\(name)")
                    #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, "\(name)")
                }
            }
            try await client.execute(
                uri: "/public/notes", method: .post, headers: json, body: ByteBuffer(string: #"{"title": "ok", "stars": 5, "extra": true}"#)
            ) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(errorCode(response) == "not_found")
            }
        }
    }

    @Test("an internal failure is a 500 with a generic message and no internals")
    func internalErrorsDoNotLeak() async throws {
        let keys = try await Keys()
        try await makeApplication(keys: keys).test(.router) { client in
            try await client.execute(uri: "/public/crash", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(errorCode(response) == "internal_error")
                #expect(!String(buffer: response.body).contains("SELECT"))
            }
        }
    }

    // MARK: Tokens

    @Test("a valid token from the cookie or a bearer header identifies the caller")
    func validTokens() async throws {
        let keys = try await Keys()
        let token = try await keys.token(user: "alice")
        try await makeApplication(keys: keys).test(.router) { client in
            try await client.execute(uri: "/private/me", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "alice")
            }
            try await client.execute(uri: "/private/me", method: .get, headers: [.cookie: "theme=dark; access_token=\(token)"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "alice")
            }
        }
    }

    @Test("missing, expired, tampered, alg none, HMAC-confused and foreign-key tokens are all 401")
    func invalidTokensAre401() async throws {
        let keys = try await Keys()
        let valid = try await keys.token(user: "alice")
        let parts = valid.split(separator: ".").map(String.init)
        let claims = try JSONEncoder().encode(AccessTokenClaims(userId: "mallory", sessionId: "s", lifetime: 300))
        let forgedPayload = claims.base64URLEncodedString
        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString

        let expired = try await keys.token(lifetime: 60, issuedAt: Date().addingTimeInterval(-3600))
        let tampered = [parts[0], forgedPayload, parts[2]].joined(separator: ".")
        let algNone = [noneHeader, forgedPayload, ""].joined(separator: ".")
        let hmacSigner = JWTKeyCollection()
        await hmacSigner.add(hmac: HMACKey(from: keys.privateKey.publicKey.pemRepresentation), digestAlgorithm: .sha256)
        let hmacConfused = try await hmacSigner.sign(AccessTokenClaims(userId: "mallory", sessionId: "s", lifetime: 300))
        let otherKeys = try await Keys()
        let foreign = try await otherKeys.token(user: "mallory")

        try await makeApplication(keys: keys).test(.router) { client in
            try await client.execute(uri: "/private/me", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(errorCode(response) == "unauthenticated")
            }
            for (name, token) in [
                ("expired", expired), ("tampered", tampered), ("alg none", algNone), ("hmac", hmacConfused), ("foreign key", foreign), ("garbage", "not.a.jwt"),
            ] {
                for headers: HTTPFields in [[.authorization: "Bearer \(token)"], [.cookie: "access_token=\(token)"]] {
                    try await client.execute(uri: "/private/me", method: .get, headers: headers) { response in
                        #expect(response.status == .unauthorized, "\(name)")
                        #expect(errorCode(response) == "invalid_token", "\(name)")
                    }
                }
            }
        }
    }

    // MARK: Origin

    @Test("unsafe cookie-authenticated requests need an allowed Origin; bearer clients need none")
    func originCheck() async throws {
        let keys = try await Keys()
        let token = try await keys.token()
        try await makeApplication(keys: keys).test(.router) { client in
            let cookie = "access_token=\(token)"
            let cases: [(String, HTTPFields, HTTPResponse.Status)] = [
                ("cookie, allowed origin", [.cookie: cookie, .origin: Self.origin], .ok),
                ("cookie, localhost origin", [.cookie: cookie, .origin: "http://localhost:8080"], .ok),
                ("cookie, foreign origin", [.cookie: cookie, .origin: "https://evil.example"], .forbidden),
                ("cookie, no origin", [.cookie: cookie], .forbidden),
                ("bearer, no origin", [.authorization: "Bearer \(token)"], .ok),
                ("bearer, foreign origin", [.authorization: "Bearer \(token)", .origin: "https://evil.example"], .forbidden),
            ]
            for (name, headers, status) in cases {
                try await client.execute(uri: "/private/notes", method: .post, headers: headers) { response in
                    #expect(response.status == status, "\(name)")
                    if status == .forbidden { #expect(errorCode(response) == "origin_not_allowed", "\(name)") }
                }
            }
            // Safe methods are not Origin-checked.
            try await client.execute(uri: "/private/me", method: .get, headers: [.cookie: cookie, .origin: "https://evil.example"]) { response in
                #expect(response.status == .ok)
            }
        }
        let policy = OriginPolicy(allowedOrigins: HTTPConfiguration.localOrigins)
        #expect(policy.allows([.origin: Self.origin, .cookie: "access_token=x"]))
        #expect(!policy.allows([.origin: "http://127.0.0.1:9999"]))
        #expect(!policy.allows([.cookie: "access_token=x"]))
        #expect(policy.allows([.authorization: "Bearer x"]))
    }

    // MARK: Operational routes

    @Test("healthz, readyz with a down dependency, and Prometheus metrics")
    func operationalRoutes() async throws {
        let keys = try await Keys()
        try await makeApplication(keys: keys, ready: false).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect((body?["checks"] as? [String: String]) == ["always": "up", "dependency": "down"])
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("hb_requests"))
            }
        }
        try await makeApplication(keys: keys, ready: true).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }
}
