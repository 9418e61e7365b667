import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceRuntime
import SocketHandlerService
import StackTesting
import Synchronization
import Testing

/// Sends a JSON request through a test client; the status and the JSON object answered.
func call(
    _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, _ session: Session? = nil, _ body: String? = nil,
    headers extra: HTTPFields = [:]
) async throws -> (status: Int, json: [String: Any]) {
    var headers = session?.bearer ?? [:]
    if body != nil { headers[.contentType] = "application/json" }
    for field in extra { headers.append(field) }
    return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
        (Int(response.status.code), json(response))
    }
}

func code(_ answer: (status: Int, json: [String: Any])) -> String? {
    (answer.json["error"] as? [String: Any])?["code"] as? String
}

/// Issue 11: sessions end everywhere, no input poisons anything, and the contract holds at the
/// edges. Serialized: the suites share the exchanges.
@Suite("hardening: sessions end everywhere, input is refused at the edge, the bus and the upgrades inside the contract", .serialized)
struct HardeningTests {
    @Test("signout, refresh-token reuse and account deletion: every service refuses the token within 2 s, and both streams' sockets close")
    func revokedSessionsDieEverywhere() async throws {
        try await ServiceHarness().runAll { services in
            for ending in ["signout", "refresh reuse", "account deletion"] {
                let user = try await signUp(services.auth, username: TestStack.uniqueName("rv"))
                // Known everywhere first (the services learn users from events).
                #expect(try await call(services.users, .get, "/api/users/me", user).status == 200)
                let chat = ChatClient(port: services.chatPort, session: user)
                let stream = ChatClient(port: services.notificationsPort, session: user, path: "/ws/notifications")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await chat.run() }
                    group.addTask { try await stream.run() }
                    #expect(await eventually { chat.isConnected && stream.isConnected }, "\(ending)")
                    let ended = ContinuousClock.now
                    switch ending {
                    case "signout":
                        #expect(try await call(services.auth, .post, "/api/auth/signout", user).status == 204)
                    case "refresh reuse":
                        for expected in [200, 401] {
                            let status = try await services.auth.execute(uri: "/api/auth/refresh", method: .post, headers: user.refreshCookie) {
                                Int($0.status.code)
                            }
                            #expect(status == expected, "\(ending)")
                        }
                    default:
                        #expect(try await call(services.auth, .delete, "/api/auth/account", user, #"{"password": "correct horse battery"}"#).status == 204)
                    }
                    // Every service, HTTP and both upgrades: refused within 2 s.
                    let refusedEverywhere = await eventually(timeout: .seconds(2), every: .milliseconds(20)) {
                        let answers = [
                            try? await call(services.users, .get, "/api/users/me", user).status,
                            try? await call(services.messages, .get, "/api/conversations", user).status,
                            try? await call(services.notifications, .get, "/api/notifications", user).status,
                            try? await UpgradeAnswer.attempt(port: services.chatPort, path: "/ws/chat", headers: ["Authorization: Bearer \(user.accessToken)"])
                                .status,
                            try? await UpgradeAnswer.attempt(
                                port: services.notificationsPort, path: "/ws/notifications", headers: ["Authorization: Bearer \(user.accessToken)"]
                            ).status,
                        ]
                        return answers.allSatisfy { $0 == 401 }
                    }
                    #expect(refusedEverywhere, "\(ending): a service still accepted the token")
                    #expect(await eventually(timeout: .seconds(2)) { chat.hasEnded && stream.hasEnded }, "\(ending): a socket stayed open")
                    print("\(ending): refused everywhere and sockets closed after \(ContinuousClock.now - ended)")
                    let answer = try await UpgradeAnswer.attempt(
                        port: services.chatPort, path: "/ws/chat", headers: ["Authorization: Bearer \(user.accessToken)"])
                    #expect(answer.errorCode == "session_ended", "\(ending): \(answer.body)")
                    group.cancelAll()
                }
            }
        }
    }

    @Test("a session that ended without its event reaching the instance: the sweep of open sockets closes both streams' sockets")
    func sweepClosesEndedSessions() async throws {
        var limits = ChatSocketLimits()
        limits.revocationSweep = .seconds(1)
        let harness = ServiceHarness()
        try await harness.runAll(chatLimits: limits) { services in
            let user = try await signUp(services.auth, username: TestStack.uniqueName("sw"))
            let chat = ChatClient(port: services.chatPort, session: user)
            let stream = ChatClient(port: services.notificationsPort, session: user, path: "/ws/notifications")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await chat.run() }
                group.addTask { try await stream.run() }
                #expect(await eventually { chat.isConnected && stream.isConnected })
                // Ended in the revocation view only, as if the instance missed user.signed_out.
                let claims = try #require(await harness.verifier().verify(user.accessToken))
                let redis = RedisClient(configuration: TestStack.redis())
                try await SessionRevocationRegistry(redis: redis, logger: TestStack.logger).revoke(sessionId: claims.sid, lifetime: .seconds(60))
                await redis.shutdown()
                #expect(await eventually(timeout: .seconds(5)) { chat.hasEnded && stream.hasEnded }, "a socket of an ended session stayed open")
                group.cancelAll()
            }
        }
    }

    @Test("passwords: every byte counts past bcrypt's 72; a different password sharing the first 72 bytes does not sign in")
    func longPasswords() async throws {
        try await ServiceHarness().run { (auth: any TestClientProtocol, _: any TestClientProtocol) async throws in
            let name = TestStack.uniqueName("pw")
            let password = String(repeating: "a", count: 72) + "the real end"
            let signup = #"{"username": "\#(name)", "email": "\#(name)@example.com", "password": "\#(password)"}"#
            #expect(try await call(auth, .post, "/api/auth/signup", nil, signup).status == 201)
            let impostor = String(repeating: "a", count: 72) + "another end"
            #expect(try await call(auth, .post, "/api/auth/signin", nil, #"{"login": "\#(name)", "password": "\#(impostor)"}"#).status == 401)
            #expect(try await call(auth, .post, "/api/auth/signin", nil, #"{"login": "\#(name)", "password": "\#(password)"}"#).status == 200)
            // 128 characters of 4-byte UTF-8 (512 bytes) is a valid password too.
            let wide = String(repeating: "😀", count: 128)
            let other = TestStack.uniqueName("pw")
            #expect(
                try await call(auth, .post, "/api/auth/signup", nil, #"{"username": "\#(other)", "email": "\#(other)@example.com", "password": "\#(wide)"}"#)
                    .status == 201)
            #expect(
                try await call(auth, .post, "/api/auth/signin", nil, #"{"login": "\#(other)", "password": "\#(String(repeating: "😀", count: 127))😁"}"#).status
                    == 401)
        }
    }

    @Test("login throttling counts per account whichever login names it, and per real client address (X-Forwarded-For only from trusted proxies)")
    func throttling() async throws {
        // Per account: username and email share one count.
        try await ServiceHarness().run { (auth: any TestClientProtocol, _: any TestClientProtocol) async throws in
            let user = try await signUp(auth, username: TestStack.uniqueName("th"))
            for attempt in 0..<5 {
                let login = attempt.isMultiple(of: 2) ? user.username : "\(user.username)@example.com"
                #expect(try await call(auth, .post, "/api/auth/signin", nil, #"{"login": "\#(login)", "password": "wrong password"}"#).status == 401)
            }
            let locked = try await call(
                auth, .post, "/api/auth/signin", nil, #"{"login": "\#(user.username)@EXAMPLE.com", "password": "correct horse battery"}"#)
            #expect(locked.status == 429 && code(locked) == "rate_limited")
            // Twenty guesses at once: each is counted before its password is checked, so exactly
            // five are checked, whatever the timing.
            let target = try await signUp(auth, username: TestStack.uniqueName("th"))
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await call(auth, .post, "/api/auth/signin", nil, #"{"login": "\#(target.username)", "password": "a guess"}"#).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 401 }.count == 5 && statuses.filter { $0 == 429 }.count == 15, "\(statuses.sorted())")
        }
        // The client address: believed from X-Forwarded-For only when the peer is a trusted proxy.
        let proxies = try TrustedProxies(["127.0.0.0/8", "10.0.0.0/8"])
        #expect(proxies.clientAddress(peer: "127.0.0.1", forwardedFor: "203.0.113.7") == "203.0.113.7")
        #expect(proxies.clientAddress(peer: "127.0.0.1", forwardedFor: "198.51.100.1, 203.0.113.7, 10.1.2.3") == "203.0.113.7")
        #expect(proxies.clientAddress(peer: "192.0.2.9", forwardedFor: "203.0.113.7") == "192.0.2.9")
        #expect(proxies.clientAddress(peer: "::1", forwardedFor: "2001:db8::1") == "::1")
        #expect(try TrustedProxies(["::1/128"]).clientAddress(peer: "::1", forwardedFor: "2001:db8::1") == "2001:db8::1")
        #expect(throws: ConfigurationError.self) { _ = try TrustedProxies(["not a network"]) }
        // Through a live server from loopback (a trusted proxy): 20 failures from one forwarded
        // address lock that address out, whatever the accounts; another address goes on.
        let harness = ServiceHarness()
        let app = try await harness.authApplication()
        try await app.test(.live) { auth in
            for attempt in 0..<20 {
                let answer = try await call(
                    auth, .post, "/api/auth/signin", nil, #"{"login": "nobody_\#(attempt)", "password": "wrong password"}"#,
                    headers: [.init("X-Forwarded-For")!: "203.0.113.7"])
                #expect(answer.status == 401)
            }
            let locked = try await call(
                auth, .post, "/api/auth/signin", nil, #"{"login": "someone", "password": "wrong password"}"#,
                headers: [.init("X-Forwarded-For")!: "203.0.113.7"])
            #expect(locked.status == 429)
            let elsewhere = try await call(
                auth, .post, "/api/auth/signin", nil, #"{"login": "someone", "password": "wrong password"}"#,
                headers: [.init("X-Forwarded-For")!: "203.0.113.8"])
            #expect(elsewhere.status == 401)
        }
        await harness.cleanUp()
    }

    @Test(
        "control characters in query parameters, JSON fields, paths and frames are refused with 400 or an error frame; newline and tab only in message bodies")
    func controlCharacters() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("cc"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("cc"))
            let id = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            let refused: [(any TestClientProtocol, HTTPRequest.Method, String, String?)] = [
                (services.users, .get, "/api/users?query=al%00ice", nil),
                (services.users, .get, "/api/users?query=%1Bx", nil),
                (services.users, .get, "/api/users/ab%00cd", nil),
                (services.users, .patch, "/api/users/me", #"{"displayName": "Al\u0000ice"}"#),
                (services.users, .patch, "/api/users/me", #"{"about": "line\u0007bell"}"#),
                (services.messages, .post, "/api/conversations", #"{"type": "group", "name": "tea\u0000time", "memberIds": []}"#),
                (services.messages, .post, "/api/conversations", #"{"type": "direct", "userId": "\#(bob.userId)\u0000"}"#),
                (services.messages, .post, "/api/conversations/\(id)/messages", #"{"clientMsgId": "c1", "body": "hi\u0000there"}"#),
                (services.messages, .post, "/api/conversations/\(id)/messages", #"{"clientMsgId": "c\u0001", "body": "hi"}"#),
                (services.messages, .get, "/api/conversations/\(id)/messages?after=%00", nil),
                (services.notifications, .get, "/api/notifications?cursor=%00", nil),
                (services.auth, .post, "/api/auth/signin", #"{"login": "a\u0000", "password": "whatever password"}"#),
            ]
            for (client, method, uri, body) in refused {
                let answer = try await call(client, method, uri, alice, body)
                #expect(answer.status == 400 && code(answer) == "validation_failed", "\(method) \(uri) \(body ?? ""): \(answer.status) \(answer.json)")
            }
            // Newlines and tabs are fine in a message body, and only there.
            #expect(
                try await call(
                    services.messages, .post, "/api/conversations/\(id)/messages", alice, #"{"clientMsgId": "ok1", "body": "two\nlines\tand a tab"}"#
                ).status == 201)
            #expect(try await call(services.users, .patch, "/api/users/me", alice, #"{"displayName": "two\nlines"}"#).status == 400)

            let chat = ChatClient(port: services.chatPort, session: alice)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await chat.run() }
                #expect(await eventually { chat.isConnected })
                try await chat.send(#"{"type": "send", "clientMsgId": "w1", "conversationId": "\#(id)", "body": "nul\u0000here"}"#)
                try await chat.send(#"{"type": "send", "clientMsgId": "w2", "conversationId": "\#(id)\u0000", "body": "fine"}"#)
                try await chat.send(#"{"type": "send", "clientMsgId": "w3", "conversationId": "\#(id)", "body": "fine\tbody\n"}"#)
                #expect(await eventually { chat.frames("error").count == 2 && chat.frames("ack").count == 1 })
                #expect(Set(chat.frames("error").compactMap { $0["clientMsgId"] as? String }) == ["w1", "w2"])
                #expect(chat.frames("error").allSatisfy { $0["code"] as? String == "invalid_frame" })
                group.cancelAll()
            }
            // Nothing of it reached the store.
            let history = try await call(services.messages, .get, "/api/conversations/\(id)/messages", alice)
            #expect((history.json["messages"] as? [[String: Any]])?.compactMap { $0["clientMsgId"] as? String } == ["ok1", "w3"])
        }
    }

    @Test("display and group names that render as nothing are refused")
    func invisibleNames() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("in"))
            for invisible in [#"   "#, #"\u3164"#, #" \u200B\u200D "#, #"\u115F\u1160"#, #"\u2800"#, #"\u0301\u0302"#, #"\uFEFF"#] {
                let profile = try await call(services.users, .patch, "/api/users/me", alice, #"{"displayName": "\#(invisible)"}"#)
                #expect(profile.status == 400 && code(profile) == "validation_failed", "displayName \(invisible)")
                let group = try await call(
                    services.messages, .post, "/api/conversations", alice, #"{"type": "group", "name": "\#(invisible)", "memberIds": []}"#)
                #expect(group.status == 400 && code(group) == "validation_failed", "group name \(invisible)")
            }
            #expect(try await call(services.users, .patch, "/api/users/me", alice, #"{"displayName": "\u3164 Alice"}"#).status == 200)
            #expect(try await call(services.messages, .post, "/api/conversations", alice, #"{"type": "group", "name": "✨", "memberIds": []}"#).status == 201)
        }
    }

    @Test(
        "20 sockets per user per stream, the next refused with 429; 200 queued sends flushed at once are all acked; a sustained flood gets rate_limited with retryAfterMs"
    )
    func socketLimits() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("sl"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("sl"))
            let id = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            for (port, path) in [(services.chatPort, "/ws/chat"), (services.notificationsPort, "/ws/notifications")] {
                let clients = (0..<20).map { _ in ChatClient(port: port, session: alice, path: path) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in clients { group.addTask { try await client.run() } }
                    #expect(await eventually { clients.allSatisfy(\.isConnected) }, "\(path)")
                    let refused = try await UpgradeAnswer.attempt(port: port, path: path, headers: ["Authorization: Bearer \(alice.accessToken)"])
                    #expect(refused.status == 429 && refused.errorCode == "too_many_sockets", "\(path): \(refused.status) \(refused.body)")
                    await clients[0].close()
                    #expect(
                        await eventually {
                            (try? await UpgradeAnswer.attempt(port: port, path: path, headers: ["Authorization: Bearer \(alice.accessToken)"]).status) == 101
                        }, "\(path): a closed socket still counted")
                    group.cancelAll()
                }
            }
            let chat = ChatClient(port: services.chatPort, session: alice)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await chat.run() }
                #expect(await eventually { chat.isConnected })
                for k in 0..<200 {
                    try await chat.send(#"{"type": "send", "clientMsgId": "q\#(k)", "conversationId": "\#(id)", "body": "queued \#(k)"}"#)
                }
                #expect(
                    await eventually(timeout: .seconds(20)) { chat.frames("ack").count == 200 },
                    "acks: \(chat.frames("ack").count), errors: \(chat.frames("error").prefix(3))")
                #expect(chat.frames("error").isEmpty)
                for k in 0..<400 {
                    try await chat.send(#"{"type": "typing", "conversationId": "\#(id)", "typing": \#(k.isMultiple(of: 2))}"#)
                }
                #expect(await eventually { !chat.frames("error").isEmpty })
                let limited = chat.frames("error").filter { $0["code"] as? String == "rate_limited" }
                #expect(!limited.isEmpty && limited.allSatisfy { ($0["retryAfterMs"] as? Int ?? 0) > 0 })
                #expect(!chat.hasEnded)
                group.cancelAll()
            }
        }
    }

    @Test("each service's bus credentials publish only its own events: socket-handler cannot announce a deleted user, users cannot store a message")
    func leastPrivilegeBus() async throws {
        let logger = TestStack.logger
        func publish<Payload: EventPayload>(as user: String, _ payload: Payload) async -> Bool {
            var configuration = TestStack.amqp(publishTimeout: .seconds(2))
            configuration.username = user
            configuration.password = "swiftchat_\(user)"
            let publisher = EventPublisher(configuration: configuration, logger: logger)
            // Unroutable is fine here: the broker accepted it; a refusal closes the channel.
            let accepted = (try? await publisher.publish([OutgoingMessage(EventEnvelope(producer: user, payload: payload))])) != nil
            await publisher.shutdown()
            return accepted
        }
        #expect(await publish(as: "socket-handler", PresenceChanged(userId: "u", online: true, lastSeenAt: Date())))
        #expect(!(await publish(as: "socket-handler", UserDeleted(userId: "u"))))
        #expect(await publish(as: "auth", UserDeleted(userId: "u")))
        let stored = MessageStored(
            message: MessageRecord(id: "m", conversationId: "c", seq: 1, senderId: "u", clientMsgId: "x", body: "b", sentAt: Date()), memberIds: [])
        #expect(!(await publish(as: "users", stored)))
        #expect(!(await publish(as: "notifications", MessageSent(senderId: "u", clientMsgId: "x", conversationId: "c", body: "b", instanceId: "i"))))
        // guest is gone.
        var guest = TestStack.amqp(publishTimeout: .seconds(2))
        guest.username = "guest"
        guest.password = "guest"
        let publisher = EventPublisher(configuration: guest, logger: logger)
        await #expect(throws: (any Error).self) { try await publisher.publish(EventEnvelope(producer: "guest", payload: UserDeleted(userId: "u"))) }
        await publisher.shutdown()
    }

    @Test("read your own writes: a user who signed up a moment ago can be talked to, looked up and added at once")
    func readYourWrites() async throws {
        try await ServiceHarness().runAll { services in
            for _ in 0..<3 {
                let alice = try await signUp(services.auth, username: TestStack.uniqueName("ry"))
                let bob = try await signUp(services.auth, username: TestStack.uniqueName("ry"))
                // No retry loop: the first answer is the answer.
                #expect(try await call(services.messages, .post, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#).status == 201)
                #expect(try await call(services.users, .get, "/api/users/\(bob.userId)", alice).status == 200)
                #expect(try await call(services.users, .put, "/api/users/me/contacts/\(bob.userId)", alice).status == 200)
            }
            // An id that never comes is still a 404, after the bounded wait.
            let started = ContinuousClock.now
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("ry"))
            #expect(try await call(services.users, .get, "/api/users/no-such-user", alice).status == 404)
            #expect(ContinuousClock.now - started < .seconds(8))
        }
    }

    @Test(
        "deleted accounts: messages stay, member entries say deleted, a direct conversation turns read-only, the username is reserved; a group keeps an admin")
    func deletedAccounts() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("da"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("db"))
            let carol = try await signUp(services.auth, username: TestStack.uniqueName("dc"))
            let direct = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            #expect(
                try await call(services.messages, .post, "/api/conversations/\(direct)/messages", bob, #"{"clientMsgId": "b1", "body": "bye"}"#).status == 201)
            let group = try await call(
                services.messages, .post, "/api/conversations", bob,
                #"{"type": "group", "name": "book club", "memberIds": ["\#(alice.userId)", "\#(carol.userId)"]}"#)
            let groupId = try #require((group.json["conversation"] as? [String: Any])?["id"] as? String)

            #expect(try await call(services.auth, .delete, "/api/auth/account", bob, #"{"password": "correct horse battery"}"#).status == 204)
            // The direct conversation becomes read-only once messages has heard.
            let attempts = Atomic<Int>(0)
            #expect(
                await eventually {
                    // A fresh clientMsgId each time: a send stored before messages heard would come back as a retry.
                    let attempt = attempts.add(1, ordering: .relaxed).newValue
                    return
                        (try? await call(
                            services.messages, .post, "/api/conversations/\(direct)/messages", alice,
                            #"{"clientMsgId": "a\#(attempt)", "body": "are you there"}"#))
                        .map { $0.status == 403 && code($0) == "peer_deleted" } ?? false
                })
            let details = try await call(services.messages, .get, "/api/conversations/\(direct)", alice)
            let members = details.json["conversation"].flatMap { ($0 as? [String: Any])?["members"] as? [[String: Any]] } ?? []
            #expect(members.first { $0["userId"] as? String == bob.userId }?["deleted"] as? Bool == true)
            #expect(members.first { $0["userId"] as? String == alice.userId }?["deleted"] == nil)
            // Bob's message stays for Alice.
            let history = try await call(services.messages, .get, "/api/conversations/\(direct)/messages", alice)
            #expect((history.json["messages"] as? [[String: Any]])?.first?["body"] as? String == "bye")
            #expect(try await call(services.users, .get, "/api/users/\(bob.userId)", alice).status == 404)
            let again = try await call(
                services.auth, .post, "/api/auth/signup", nil,
                #"{"username": "\#(bob.username)", "email": "new_\#(bob.username)@example.com", "password": "correct horse"}"#)
            #expect(again.status == 409 && code(again) == "username_taken")
            // Bob was the group's only admin: the longest-standing member (Alice, added first) took over.
            let groupDetails = try await call(services.messages, .get, "/api/conversations/\(groupId)", carol)
            let roles = (groupDetails.json["conversation"] as? [String: Any])?["members"] as? [[String: Any]] ?? []
            #expect(roles.first { $0["userId"] as? String == alice.userId }?["role"] as? String == "admin")
            // Admins promote and demote; the last admin cannot step down.
            #expect(
                try await call(services.messages, .patch, "/api/conversations/\(groupId)/members/\(carol.userId)", alice, #"{"role": "admin"}"#).status == 200)
            #expect(
                try await call(services.messages, .patch, "/api/conversations/\(groupId)/members/\(alice.userId)", carol, #"{"role": "member"}"#).status == 200)
            let last = try await call(services.messages, .patch, "/api/conversations/\(groupId)/members/\(carol.userId)", carol, #"{"role": "member"}"#)
            #expect(last.status == 409 && code(last) == "last_admin")
            #expect(
                try await call(services.messages, .patch, "/api/conversations/\(groupId)/members/\(carol.userId)", alice, #"{"role": "admin"}"#).status == 403)
            // Carol, the last admin, leaves: Alice becomes admin.
            #expect(try await call(services.messages, .delete, "/api/conversations/\(groupId)/members/\(carol.userId)", carol).status == 204)
            let after = try await call(services.messages, .get, "/api/conversations/\(groupId)", alice)
            let left = (after.json["conversation"] as? [String: Any])?["members"] as? [[String: Any]] ?? []
            #expect(left.first { $0["userId"] as? String == alice.userId }?["role"] as? String == "admin")
        }
    }

    @Test("one time format everywhere (RFC 3339 UTC with milliseconds), and invalid_cursor for a bad cursor in every service that pages")
    func formats() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("tf"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("tf"))
            let id = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            let sent = try await call(services.messages, .post, "/api/conversations/\(id)/messages", alice, #"{"clientMsgId": "t1", "body": "time"}"#)
            let me = try await call(services.auth, .get, "/api/auth/currentuser", alice)
            let times = [
                (me.json["user"] as? [String: Any])?["createdAt"] as? String,
                (sent.json["message"] as? [String: Any])?["sentAt"] as? String,
            ]
            let format = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/#
            for time in times { #expect(time.map { $0.wholeMatch(of: format) != nil } == true, "\(time ?? "nil")") }
            for (client, uri) in [
                (services.users, "/api/users?cursor=not-ours"), (services.notifications, "/api/notifications?cursor=not-ours"),
                (services.notifications, "/api/notifications?cursor=-5"),
            ] {
                let answer = try await call(client, .get, uri, alice)
                #expect(answer.status == 400 && code(answer) == "invalid_cursor", "\(uri): \(answer.json)")
            }
        }
    }

    @Test("refused websocket upgrades answer in the error shape: 401 without a token, 403 from a foreign Origin")
    func refusedUpgrades() async throws {
        try await ServiceHarness().runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("up"))
            for (port, path) in [(services.chatPort, "/ws/chat"), (services.notificationsPort, "/ws/notifications")] {
                let anonymous = try await UpgradeAnswer.attempt(port: port, path: path, headers: [])
                #expect(anonymous.status == 401 && anonymous.errorCode == "unauthenticated", "\(path): \(anonymous.status) \(anonymous.body)")
                let forged = try await UpgradeAnswer.attempt(port: port, path: path, headers: ["Authorization: Bearer not.a.token"])
                #expect(forged.status == 401 && forged.errorCode == "invalid_token", "\(path)")
                let foreign = try await UpgradeAnswer.attempt(
                    port: port, path: path, headers: ["Authorization: Bearer \(alice.accessToken)", "Origin: https://evil.example"])
                #expect(foreign.status == 403 && foreign.errorCode == "origin_not_allowed", "\(path)")
                let accepted = try await UpgradeAnswer.attempt(port: port, path: path, headers: ["Authorization: Bearer \(alice.accessToken)"])
                #expect(accepted.status == 101, "\(path)")
            }
        }
    }
}
