import Foundation
import Hummingbird
import HummingbirdTesting
import StackTesting
import Testing

@Suite("bad input on every route of auth and users")
struct BadInputTests {
    static let hostileBodies: [(String, String)] = [
        ("malformed JSON", #"{"username": "#),
        ("not an object", #"["a", "b"]"#),
        ("wrong types", #"{"username": 12, "email": true, "password": null, "login": [], "displayName": 5, "about": {}}"#),
        ("unknown field", #"{"username": "someone", "email": "a@b.co", "password": "correct horse", "login": "x", "isAdmin": true}"#),
        (
            "SQL-looking",
            #"{"username": "x' OR '1'='1", "email": "'; DROP TABLE users; --@x.io", "password": "' OR 1=1 --", "login": "admin'--", "displayName": "'; DELETE FROM profiles; --", "about": "1); DROP SCHEMA users; --"}"#
        ),
        ("oversize", #"{"username": ""# + String(repeating: "a", count: 100_000) + #""}"#),
        ("empty", ""),
    ]

    @Test("every route answers hostile input with a 4xx in the error shape, and the service stays up")
    func hostileInputEverywhere() async throws {
        try await ServiceHarness().run { auth, users in
            let session = try await signUp(auth, username: TestStack.uniqueName("bad"))
            let authed = session.bearer.merging(jsonHeaders)
            let routes: [(any TestClientProtocol, String, HTTPRequest.Method, HTTPFields)] = [
                (auth, "/api/auth/signup", .post, jsonHeaders),
                (auth, "/api/auth/signin", .post, jsonHeaders),
                (auth, "/api/auth/account", .delete, authed),
                (users, "/api/users/me", .patch, authed),
            ]
            for (client, uri, method, headers) in routes {
                for (name, body) in Self.hostileBodies {
                    try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body)) { response in
                        #expect((400..<500).contains(response.status.code), "\(method) \(uri) \(name): \(response.status)")
                        #expect(errorCode(response) != nil, "\(method) \(uri) \(name)")
                    }
                }
                try await client.execute(uri: uri, method: method, headers: headers.merging([.contentType: "text/plain"]), body: ByteBuffer(string: "{}")) {
                    response in
                    #expect(response.status == .unsupportedMediaType || response.status == .badRequest, "\(uri) wrong content type")
                }
            }
            let queries = [
                "/api/users?limit=0", "/api/users?limit=abc", "/api/users?limit=101", "/api/users?cursor=not-a-cursor",
                "/api/users?query=" + String(repeating: "q", count: 65), "/api/users?query=%27%20OR%201%3D1%20--",
                "/api/users/%27%3B%20DROP%20TABLE%20profiles%3B%20--", "/api/users/" + String(repeating: "x", count: 300),
            ]
            for uri in queries {
                try await users.execute(uri: uri, method: .get, headers: session.bearer) { response in
                    #expect(response.status != .internalServerError, "\(uri)")
                    #expect(response.status == .ok || errorCode(response) != nil, "\(uri): \(response.status)")
                }
            }
            for uri in ["/api/users/me/contacts/%27%20OR%201%3D1", "/api/users/me/contacts/" + String(repeating: "y", count: 300)] {
                try await users.execute(uri: uri, method: .put, headers: session.bearer) { response in
                    #expect(response.status == .notFound, "\(uri)")
                }
            }
            // Still up, and the account still works.
            for client in [auth, users] {
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            }
            try await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: session.bearer) { #expect($0.status == .ok) }
        }
    }

    @Test("a signup that breaks the rules is a 400 naming each field")
    func validation() async throws {
        try await ServiceHarness().run { auth, _ in
            let body = #"{"username": "no", "email": "not-an-email", "password": "short"}"#
            try await auth.execute(uri: "/api/auth/signup", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == "validation_failed")
                let fields = (json(response)["error"] as? [String: Any])?["fields"] as? [String: String]
                #expect(Set(fields?.keys ?? [:].keys) == ["username", "email", "password"])
            }
            try await auth.execute(
                uri: "/api/auth/signup", method: .post, headers: jsonHeaders,
                body: ByteBuffer(string: #"{"username": "has space", "email": "a@b.co", "password": "correct horse"}"#)
            ) { response in
                #expect(response.status == .badRequest)
            }
        }
    }
}
