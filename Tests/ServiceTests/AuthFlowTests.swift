import AuthService
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import ServiceHTTP
import StackTesting
import Testing

@Suite("auth: the full flow against the real stack")
struct AuthFlowTests {
    @Test("signup signs in: 201, the user, and HttpOnly SameSite cookies with sensible paths and lifetimes")
    func signupSetsCookies() async throws {
        try await ServiceHarness().run { auth, _ in
            let name = TestStack.uniqueName("al")
            let body = #"{"username": "\#(name.uppercased())", "email": "\#(name)@Example.com", "password": "correct horse"}"#
            let signedIn = try await auth.execute(uri: "/api/auth/signup", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .created)
                let user = try #require(json(response)["user"] as? [String: Any])
                #expect(user["username"] as? String == name)  // lowercased
                #expect(user["displayName"] as? String == name)
                #expect(user["email"] as? String == "\(name)@Example.com")
                #expect((user["createdAt"] as? String)?.hasSuffix("Z") == true)
                #expect(json(response)["accessToken"] as? String != nil)
                let cookies = setCookies(response)
                let access = try #require(cookies["access_token"]?.attributes)
                #expect(access.contains("HttpOnly") && access.contains("SameSite=Lax") && access.contains("Path=/") && access.contains("Max-Age=900"))
                #expect(!access.contains("Secure"))  // this harness runs with COOKIE_SECURE=false
                let refresh = try #require(cookies["refresh_token"]?.attributes)
                #expect(
                    refresh.contains("HttpOnly") && refresh.contains("SameSite=Strict") && refresh.contains("Path=/api/auth")
                        && refresh.contains("Max-Age=2592000"))
                return try session(from: response)
            }
            for headers in [signedIn.cookieHeader, signedIn.bearer] {
                try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: headers) { response in
                    #expect(response.status == .ok)
                    #expect((json(response)["user"] as? [String: Any])?["id"] as? String == signedIn.userId)
                }
            }
        }
    }

    @Test("cookies are Secure by default")
    func secureCookiesByDefault() async throws {
        try await ServiceHarness(configure: { $0.secureCookies = true }).run { auth, _ in
            let body = #"{"username": "\#(TestStack.uniqueName("sec"))", "email": "\#(TestStack.uniqueName("s"))@example.com", "password": "correct horse"}"#
            try await auth.execute(uri: "/api/auth/signup", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .created)
                #expect(setCookies(response).values.allSatisfy { $0.attributes.contains("Secure") })
            }
        }
    }

    @Test("usernames are unique case-insensitively, emails too: 409 with a code saying which")
    func conflicts() async throws {
        try await ServiceHarness().run { auth, _ in
            let name = TestStack.uniqueName("dup")
            _ = try await signUp(auth, username: name)
            let cases = [
                (#"{"username": "\#(name)", "email": "other_\#(name)@example.com", "password": "correct horse"}"#, "username_taken"),
                (#"{"username": "x\#(name)", "email": "\#(name.uppercased())@EXAMPLE.com", "password": "correct horse"}"#, "email_taken"),
            ]
            for (body, code) in cases {
                try await auth.execute(uri: "/api/auth/signup", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .conflict)
                    #expect(errorCode(response) == code)
                }
            }
        }
    }

    @Test("signin by username or email; a wrong password and an unknown login get the same 401")
    func signin() async throws {
        try await ServiceHarness().run { auth, _ in
            let name = TestStack.uniqueName("si")
            _ = try await signUp(auth, username: name, password: "right password")
            for login in [name, "\(name)@example.com", name.uppercased()] {
                let body = #"{"login": "\#(login)", "password": "right password"}"#
                try await auth.execute(uri: "/api/auth/signin", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .ok)
                    #expect(json(response)["accessToken"] is String)
                    #expect(setCookies(response)["access_token"] != nil)
                }
            }
            var bodies: [String] = []
            for body in [#"{"login": "\#(name)", "password": "wrong password"}"#, #"{"login": "nobody_\#(name)", "password": "wrong password"}"#] {
                try await auth.execute(uri: "/api/auth/signin", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .unauthorized)
                    #expect(errorCode(response) == "invalid_credentials")
                    bodies.append(String(buffer: response.body))
                }
            }
            #expect(bodies[0] == bodies[1])
        }
    }

    @Test("refresh rotates the token; presenting a used one revokes the whole session")
    func refreshRotationAndReuse() async throws {
        try await ServiceHarness().run { auth, _ in
            let first = try await signUp(auth, username: TestStack.uniqueName("rf"))
            let second = try await auth.execute(uri: "/api/auth/refresh", method: .post, headers: first.refreshCookie) { response in
                #expect(response.status == .ok)
                return try session(from: response)
            }
            #expect(second.refreshToken != first.refreshToken)
            try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: second.bearer) { response in
                #expect(response.status == .ok)
            }
            // The first token again: a replay. The session dies, with every token of it.
            try await auth.execute(uri: "/api/auth/refresh", method: .post, headers: first.refreshCookie) { response in
                #expect(response.status == .unauthorized)
                #expect(errorCode(response) == "refresh_token_reused")
                #expect(setCookies(response)["access_token"]?.attributes.contains("Max-Age=0") == true)
            }
            try await auth.execute(uri: "/api/auth/refresh", method: .post, headers: second.refreshCookie) { response in
                #expect(response.status == .unauthorized)
            }
            try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: second.bearer) { response in
                #expect(response.status == .unauthorized)
            }
            try await auth.execute(uri: "/api/auth/refresh", method: .post) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test("signout revokes the session and clears the cookies")
    func signout() async throws {
        try await ServiceHarness().run { auth, _ in
            let session = try await signUp(auth, username: TestStack.uniqueName("so"))
            try await auth.execute(uri: "/api/auth/signout", method: .post, headers: [.cookie: "access_token=\(session.accessToken)"]) { response in
                #expect(response.status == .forbidden)  // cookie auth without an Origin
            }
            try await auth.execute(uri: "/api/auth/signout", method: .post, headers: session.cookieHeader) { response in
                #expect(response.status == .noContent)
                let cookies = setCookies(response)
                #expect(cookies["access_token"]?.value == "" && cookies["access_token"]?.attributes.contains("Max-Age=0") == true)
                #expect(cookies["refresh_token"]?.value == "" && cookies["refresh_token"]?.attributes.contains("Max-Age=0") == true)
            }
            try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: session.bearer) { response in
                #expect(response.status == .unauthorized)
            }
            try await auth.execute(uri: "/api/auth/refresh", method: .post, headers: session.refreshCookie) { response in
                #expect(response.status == .unauthorized)
            }
            try await auth.execute(uri: "/api/auth/signout", method: .post) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test("account deletion needs the password, then the account and its sessions are gone")
    func deleteAccount() async throws {
        try await ServiceHarness().run { auth, _ in
            let name = TestStack.uniqueName("del")
            let session = try await signUp(auth, username: name, password: "keep it safe")
            try await auth.execute(
                uri: "/api/auth/account", method: .delete, headers: session.bearer.merging(jsonHeaders), body: ByteBuffer(string: #"{"password": "guess"}"#)
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(errorCode(response) == "invalid_credentials")
            }
            try await auth.execute(
                uri: "/api/auth/account", method: .delete, headers: session.bearer.merging(jsonHeaders),
                body: ByteBuffer(string: #"{"password": "keep it safe"}"#)
            ) { response in
                #expect(response.status == .noContent)
            }
            try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: session.bearer) { response in
                #expect(response.status == .unauthorized)
            }
            try await auth.execute(
                uri: "/api/auth/signin", method: .post, headers: jsonHeaders, body: ByteBuffer(string: #"{"login": "\#(name)", "password": "keep it safe"}"#)
            ) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test("repeated failures are limited per account and per client address, with Retry-After")
    func bruteForceLimits() async throws {
        let harness = ServiceHarness {
            $0.maxFailuresPerAccount = 3
            $0.maxFailuresPerAddress = 5
        }
        try await harness.run { auth, _ in
            let name = TestStack.uniqueName("bf")
            _ = try await signUp(auth, username: name, password: "right password")
            func attempt(_ login: String, _ password: String, from address: String) async throws -> TestResponse {
                try await auth.execute(
                    uri: "/api/auth/signin", method: .post, headers: jsonHeaders.merging([.init("X-Real-IP")!: address]),
                    body: ByteBuffer(string: #"{"login": "\#(login)", "password": "\#(password)"}"#)
                ) { $0 }
            }
            for _ in 0..<3 { #expect(try await attempt(name, "wrong", from: "10.0.0.1").status == .unauthorized) }
            // Locked: even the right password, even from another address.
            let locked = try await attempt(name, "right password", from: "10.0.0.2")
            #expect(locked.status == .tooManyRequests)
            #expect(errorCode(locked) == "rate_limited")
            #expect(Int(locked.headers[.retryAfter] ?? "") ?? 0 > 0)

            // Per address: many accounts guessed from one address.
            for index in 0..<5 { _ = try await attempt("\(name)_ghost\(index)", "wrong", from: "10.0.0.9") }
            let blocked = try await attempt("\(name)_another", "wrong", from: "10.0.0.9")
            #expect(blocked.status == .tooManyRequests)
        }
    }

    @Test("tampered, expired, foreign-key and alg-none tokens are refused by auth and by users")
    func hostileTokensRefusedByBoth() async throws {
        let harness = ServiceHarness()
        try await harness.run { auth, users in
            let session = try await signUp(auth, username: TestStack.uniqueName("tk"))
            let parts = session.accessToken.split(separator: ".").map(String.init)
            let forged = Data(#"{"sub":"someone-else","sid":"x","iss":"swiftchat-auth","iat":1,"exp":4102444800}"#.utf8).base64URLEncodedString
            let signer = JWTKeyCollection()
            await signer.add(ecdsa: harness.privateKey)
            let expired = try await signer.sign(
                AccessTokenClaims(userId: session.userId, sessionId: "s", issuedAt: Date().addingTimeInterval(-7200), lifetime: 60))
            let stranger = JWTKeyCollection()
            await stranger.add(ecdsa: ES256PrivateKey())
            let foreign = try await stranger.sign(AccessTokenClaims(userId: session.userId, sessionId: "s", lifetime: 300))
            let tokens = [
                "tampered": [parts[0], forged, parts[2]].joined(separator: "."),
                "alg none": [Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString, forged, ""].joined(separator: "."),
                "expired": expired,
                "foreign key": foreign,
            ]
            for (name, token) in tokens {
                try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                    #expect(response.status == .unauthorized, "auth: \(name)")
                }
                try await users.execute(uri: "/api/users", method: .get, headers: [.cookie: "access_token=\(token)"]) { response in
                    #expect(response.status == .unauthorized, "users: \(name)")
                    #expect(errorCode(response) == "invalid_token", "users: \(name)")
                }
            }
        }
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged.append(field) }
        return merged
    }
}
