import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import PostgresNIO
import ServiceHTTP
import StackTesting
import Testing

@Suite("messages: conversations, members and messages against the real stack")
struct MessagesTests {
    /// Signs up `count` users and waits until messages knows them (UserEvents over RabbitMQ).
    func people(_ auth: any TestClientProtocol, _ messages: any TestClientProtocol, _ count: Int) async throws -> [Session] {
        var sessions: [Session] = []
        for _ in 0..<count { sessions.append(try await signUp(auth, username: TestStack.uniqueName("m"))) }
        let probe = sessions[0]
        for other in sessions.dropFirst() {
            #expect(
                await eventually(timeout: .seconds(5)) {
                    (try? await messages.execute(
                        uri: "/api/conversations", method: .post, headers: probe.bearer.merging(jsonHeaders),
                        body: ByteBuffer(string: #"{"type": "group", "name": "probe", "memberIds": ["\#(other.userId)"]}"#)
                    ) { $0.status }) == .created
                })
        }
        return sessions
    }

    func post(_ client: any TestClientProtocol, _ uri: String, _ session: Session, _ body: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: session.bearer.merging(jsonHeaders), body: ByteBuffer(string: body)) { $0 }
    }

    func get(_ client: any TestClientProtocol, _ uri: String, _ session: Session) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .get, headers: session.bearer) { $0 }
    }

    func conversationId(_ response: TestResponse) -> String? {
        (json(response)["conversation"] as? [String: Any])?["id"] as? String
    }

    func seqs(_ response: TestResponse) -> [Int] {
        (json(response)["messages"] as? [[String: Any]] ?? []).compactMap { $0["seq"] as? Int }
    }

    @Test("a direct conversation is created once, even when both sides ask at the same moment")
    func directCreatedOnce() async throws {
        try await ServiceHarness().runChat { auth, messages in
            let people = try await people(auth, messages, 2)
            let (alice, bob) = (people[0], people[1])
            async let fromAlice = post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            async let fromBob = post(messages, "/api/conversations", bob, #"{"type": "direct", "userId": "\#(alice.userId)"}"#)
            let (a, b) = try await (fromAlice, fromBob)
            #expect(conversationId(a) != nil && conversationId(a) == conversationId(b))
            #expect(Set([a.status, b.status]) == [.created, .ok])
            let again = try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            #expect(again.status == .ok && conversationId(again) == conversationId(a))
            #expect(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(alice.userId)"}"#).status == .badRequest)
            #expect(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "nobody"}"#).status == .notFound)
        }
    }

    @Test("sends are idempotent, seqs are gap-free in send order, and catch-up by after=lastSeq returns exactly what was missed")
    func sendingAndCatchUp() async throws {
        try await ServiceHarness().runChat { auth, messages in
            let people = try await people(auth, messages, 2)
            let (alice, bob) = (people[0], people[1])
            let id = try #require(conversationId(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)))
            let first = try await post(messages, "/api/conversations/\(id)/messages", alice, #"{"clientMsgId": "c-1", "body": "hello"}"#)
            let retry = try await post(messages, "/api/conversations/\(id)/messages", alice, #"{"clientMsgId": "c-1", "body": "hello"}"#)
            #expect(first.status == .created && retry.status == .ok)
            #expect((json(first)["message"] as? [String: Any])?["id"] as? String == (json(retry)["message"] as? [String: Any])?["id"] as? String)
            #expect((json(first)["message"] as? [String: Any])?["seq"] as? Int == 1)

            // Bob reads up to seq 1, then is "offline" while 30 more arrive.
            let seenByBob = seqs(try await get(messages, "/api/conversations/\(id)/messages?after=0", bob))
            #expect(seenByBob == [1])
            for index in 2...31 {
                let sender = index % 2 == 0 ? bob : alice
                #expect(
                    try await post(messages, "/api/conversations/\(id)/messages", sender, #"{"clientMsgId": "c-\#(index)", "body": "message \#(index)"}"#)
                        .status == .created)
            }
            let list = try await get(messages, "/api/conversations", alice)
            let summary = try #require((json(list)["conversations"] as? [[String: Any]])?.first { $0["id"] as? String == id })
            #expect(summary["lastSeq"] as? Int == 31)
            #expect((summary["lastMessage"] as? [String: Any])?["body"] as? String == "message 31")
            #expect(summary["myReadSeq"] as? Int == 31)  // alice sent the last one: she has read it
            #expect(summary["unreadCount"] as? Int == 0)
            #expect((summary["members"] as? [[String: Any]])?.count == 2)

            let caughtUp = try await get(messages, "/api/conversations/\(id)/messages?after=1&limit=200", bob)
            #expect(seqs(caughtUp) == Array(2...31))
            #expect(seqs(try await get(messages, "/api/conversations/\(id)/messages?before=5", bob)) == [1, 2, 3, 4])
            // A seq range, as a client that knows lastSeq fetches pages of it side by side.
            #expect(seqs(try await get(messages, "/api/conversations/\(id)/messages?after=10&before=21&limit=200", bob)) == Array(11...20))
            #expect(seqs(try await get(messages, "/api/conversations/\(id)/messages?limit=3", bob)) == [29, 30, 31])
            #expect(try await get(messages, "/api/conversations/\(id)/messages?after=-1", bob).status == .badRequest)
        }
    }

    @Test(
        "an account's registration that comes after its deletion leaves it deleted: it cannot be added to a group, and a group it created meanwhile shows it deleted, its admin replaced and its members' version moved on"
    )
    func registrationAfterDeletion() async throws {
        let harness = ServiceHarness()
        try await harness.runChat { auth, messages in
            let alice = try await people(auth, messages, 1)[0]
            let (late, marker) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
            // `late` signed up a moment ago: auth let it in, and messages has not heard of it yet.
            let signer = JWTKeyCollection()
            await signer.add(ecdsa: harness.privateKey)
            let token = try await signer.sign(AccessTokenClaims(userId: late, sessionId: "s-\(late)", lifetime: 300))
            let bearer: HTTPFields = [.authorization: "Bearer \(token)"]
            let created = try await messages.execute(
                uri: "/api/conversations", method: .post, headers: bearer.merging(jsonHeaders),
                body: ByteBuffer(string: #"{"type": "group", "name": "early", "memberIds": ["\#(alice.userId)"]}"#)
            ) { response in
                #expect(response.status == .created)
                return conversationId(response)
            }
            let early = try #require(created)
            @Sendable func membersVersion(_ client: PostgresClient) async throws -> Int {
                let rows = try await client.query("SELECT members_version FROM conversations WHERE id = \(early)")
                for try await version in rows.decode(Int.self) { return version }
                return -1
            }
            let before = try await TestStack.withClient(schema: harness.messagesSchema) { try await membersVersion($0) }

            try await MadeUpEvents.publish([try .deleted(late), try .registered(late), try .registered(marker)])
            func group(with id: String) async throws -> HTTPResponse.Status {
                try await post(messages, "/api/conversations", alice, #"{"type": "group", "name": "g", "memberIds": ["\#(id)"]}"#).status
            }
            #expect(await eventually(timeout: .seconds(10)) { (try? await group(with: marker)) == .created })
            #expect(try await group(with: late) == .notFound)
            let after = try await TestStack.withClient(schema: harness.messagesSchema) { try await membersVersion($0) }
            #expect(after > before)
            // Shown deleted, and the group's last admin replaced, as for an account messages knew.
            let details = json(try await get(messages, "/api/conversations/\(early)", alice))["conversation"] as? [String: Any]
            let members = details?["members"] as? [[String: Any]] ?? []
            #expect(members.first { $0["userId"] as? String == late }?["deleted"] as? Bool == true)
            #expect(members.first { $0["userId"] as? String == alice.userId }?["role"] as? String == "admin")
        }
    }

    @Test("1,000 message.sent events (with duplicates) via RabbitMQ are stored once each, seq 1…1000 in send order")
    func orderedGroupCommitFromTheBus() async throws {
        let harness = ServiceHarness()
        try await harness.runChat { auth, messages in
            let people = try await people(auth, messages, 2)
            let (alice, bob) = (people[0], people[1])
            let id = try #require(conversationId(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)))
            let storedBefore = try await metric(Self.storedAsKnown, of: messages)
            let handedOffBefore = try await metric(Self.handOffs, of: messages)
            let total = 1_000
            var batch: [OutgoingMessage] = []
            for index in 0..<total {
                let sent = MessageSent(senderId: alice.userId, clientMsgId: "bus-\(index)", conversationId: id, body: "n\(index)", instanceId: "test")
                batch.append(try OutgoingMessage(EventEnvelope(producer: "test", payload: sent)))
                if index % 10 == 0 { batch.append(batch[batch.count - 1]) }  // a redelivered duplicate
                if batch.count >= 100 {
                    try await MadeUpEvents.publish(batch)
                    batch.removeAll()
                }
            }
            if !batch.isEmpty { try await MadeUpEvents.publish(batch) }

            var stored: [[String: Any]] = []
            #expect(
                await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
                    stored = []
                    var after = 0
                    while true {
                        let page =
                            (try? await get(messages, "/api/conversations/\(id)/messages?after=\(after)&limit=200", bob)).map {
                                json($0)["messages"] as? [[String: Any]] ?? []
                            } ?? []
                        stored += page
                        guard let last = page.last?["seq"] as? Int, page.count == 200 else { break }
                        after = last
                    }
                    return stored.count >= total
                })
            #expect(stored.count == total)
            #expect(stored.compactMap { $0["seq"] as? Int } == Array(1...total))
            #expect(stored.compactMap { $0["clientMsgId"] as? String } == (0..<total).map { "bus-\($0)" })
            // After the first batch, the conversation is known: later batches take one statement.
            #expect(try await metric(Self.storedAsKnown, of: messages) > storedBefore)
            // Each stored batch was handed to the relay, not left for its rounds.
            #expect(try await metric(Self.handOffs, of: messages) > handedOffBefore)
        }
    }

    /// Batches messages stored as known, and hand-offs the relay published.
    private static let storedAsKnown = #"swiftchat_messages_known_batches_total{result="stored"}"#
    private static let handOffs = "swiftchat_outbox_handoff_seconds_count"

    /// A metric's value so far (the metrics are the process's: read one before and after).
    private func metric(_ name: String, of messages: some TestClientProtocol) async throws -> Double {
        let metrics = try await messages.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
        return metricValue(name, in: metrics) ?? 0
    }

    @Test(
        "a batch that holds a retry among new sends stores each new one once, in order, and the retry not again; a retry where its sender may not send is still answered as a retry"
    )
    func retryInsideABatch() async throws {
        let harness = ServiceHarness()
        try await harness.runChat { auth, messages in
            let people = try await people(auth, messages, 3)
            let (alice, bob) = (people[0], people[1])
            let id = try #require(conversationId(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)))
            func send(_ names: [String]) async throws {
                let sends = names.map { MessageSent(senderId: alice.userId, clientMsgId: $0, conversationId: id, body: "body of \($0)", instanceId: "test") }
                try await MadeUpEvents.publish([try OutgoingMessage(EventBatchEnvelope(producer: "test", payloads: sends))])
            }
            func stored() async -> [[String: Any]] {
                (try? await get(messages, "/api/conversations/\(id)/messages?after=0&limit=100", bob)).map { json($0)["messages"] as? [[String: Any]] ?? [] }
                    ?? []
            }
            try await send(["a", "b", "c"])
            #expect(await eventually(timeout: .seconds(30), every: .milliseconds(100)) { await stored().count == 3 })
            // One broker message, so one batch: "b" again (its first copy stored above), and new ones.
            try await send(["d", "b", "e", "f"])
            #expect(await eventually(timeout: .seconds(30), every: .milliseconds(100)) { await stored().count >= 6 })
            let history = await stored()
            #expect(history.compactMap { $0["clientMsgId"] as? String } == ["a", "b", "c", "d", "e", "f"])
            #expect(history.compactMap { $0["seq"] as? Int } == Array(1...6))
            #expect(history.compactMap { $0["body"] as? String }[1] == "body of b")

            // A retry is answered as one even where its sender may not send: "a" again, to a
            // conversation Alice is not in, is a reused clientMsgId (409), not a 404.
            let carol = people[2]
            let other = try #require(conversationId(try await post(messages, "/api/conversations", carol, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)))
            let reused = try await post(messages, "/api/conversations/\(other)/messages", alice, #"{"clientMsgId": "a", "body": "body of a"}"#)
            #expect(reused.status == .conflict)
            #expect((json(reused)["error"] as? [String: Any])?["code"] as? String == "client_msg_id_reused")
        }
    }

    @Test("groups: admin rules, adding only existing users, leaving; non-members and removed members get 404 for everything")
    func groupsAndAuthorization() async throws {
        try await ServiceHarness().runChat { auth, messages in
            let people = try await people(auth, messages, 4)
            let (admin, member, newcomer, outsider) = (people[0], people[1], people[2], people[3])
            let created = try await post(messages, "/api/conversations", admin, #"{"type": "group", "name": "Team", "memberIds": ["\#(member.userId)"]}"#)
            #expect(created.status == .created)
            let id = try #require(conversationId(created))
            let roles = ((json(created)["conversation"] as? [String: Any])?["members"] as? [[String: Any]] ?? [])
                .reduce(into: [String: String]()) { $0[$1["userId"] as? String ?? ""] = $1["role"] as? String }
            #expect(roles == [admin.userId: "admin", member.userId: "member"])

            let rename = #"{"name": "Renamed"}"#
            #expect(
                try await messages.execute(
                    uri: "/api/conversations/\(id)", method: .patch, headers: member.bearer.merging(jsonHeaders), body: ByteBuffer(string: rename)
                ) { $0.status } == .forbidden)
            #expect(
                try await messages.execute(
                    uri: "/api/conversations/\(id)", method: .patch, headers: admin.bearer.merging(jsonHeaders), body: ByteBuffer(string: rename)
                ) { $0.status } == .ok)
            #expect(try await post(messages, "/api/conversations/\(id)/members", member, #"{"userId": "\#(newcomer.userId)"}"#).status == .forbidden)
            #expect(try await post(messages, "/api/conversations/\(id)/members", admin, #"{"userId": "ghost"}"#).status == .notFound)
            #expect(try await post(messages, "/api/conversations/\(id)/members", admin, #"{"userId": "\#(newcomer.userId)"}"#).status == .ok)
            #expect(try await post(messages, "/api/conversations/\(id)/messages", newcomer, #"{"clientMsgId": "n1", "body": "hi all"}"#).status == .created)

            // The outsider learns nothing: the same 404 for this group and for an id that does not exist.
            let missing = try await get(messages, "/api/conversations/no-such-id", outsider)
            for uri in ["/api/conversations/\(id)", "/api/conversations/\(id)/messages"] {
                let response = try await get(messages, uri, outsider)
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body) == String(buffer: missing.body))
            }
            #expect(try await post(messages, "/api/conversations/\(id)/messages", outsider, #"{"clientMsgId": "x", "body": "let me in"}"#).status == .notFound)
            #expect(try await post(messages, "/api/conversations/\(id)/members", outsider, #"{"userId": "\#(outsider.userId)"}"#).status == .notFound)
            let outsiderList = json(try await get(messages, "/api/conversations", outsider))["conversations"] as? [[String: Any]] ?? []
            #expect(!outsiderList.contains { $0["id"] as? String == id })

            // The member leaves; the admin removes the newcomer. Neither sees anything afterwards.
            #expect(
                try await messages.execute(uri: "/api/conversations/\(id)/members/\(newcomer.userId)", method: .delete, headers: member.bearer) { $0.status }
                    == .forbidden)
            #expect(
                try await messages.execute(uri: "/api/conversations/\(id)/members/\(member.userId)", method: .delete, headers: member.bearer) { $0.status }
                    == .noContent)
            #expect(
                try await messages.execute(uri: "/api/conversations/\(id)/members/\(newcomer.userId)", method: .delete, headers: admin.bearer) { $0.status }
                    == .noContent)
            for gone in [member, newcomer] {
                #expect(try await get(messages, "/api/conversations/\(id)/messages?after=0", gone).status == .notFound)
                #expect(
                    try await post(messages, "/api/conversations/\(id)/messages", gone, #"{"clientMsgId": "late", "body": "still here?"}"#).status == .notFound)
            }
            let details = json(try await get(messages, "/api/conversations/\(id)", admin))["conversation"] as? [String: Any]
            #expect(details?["name"] as? String == "Renamed")
            #expect((details?["members"] as? [[String: Any]])?.count == 1)
        }
    }

    @Test("bad input on every messages route is a 4xx in the error shape")
    func badInput() async throws {
        try await ServiceHarness().runChat { auth, messages in
            let people = try await people(auth, messages, 2)
            let (alice, bob) = (people[0], people[1])
            let id = try #require(conversationId(try await post(messages, "/api/conversations", alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)))
            let bodies =
                BadInputTests.hostileBodies.map(\.1) + [
                    #"{"type": "channel"}"#, #"{"type": "group", "name": ""}"#, #"{"type": "group", "name": "x", "memberIds": "everyone"}"#,
                    #"{"clientMsgId": "", "body": "x"}"#, #"{"clientMsgId": "a", "body": "   "}"#,
                    #"{"clientMsgId": "a", "body": ""# + String(repeating: "b", count: 4001) + #""}"#,
                ]
            for uri in ["/api/conversations", "/api/conversations/\(id)/messages", "/api/conversations/\(id)/members"] {
                for body in bodies {
                    let response = try await post(messages, uri, alice, body)
                    #expect((400..<500).contains(response.status.code), "\(uri) \(body.prefix(40)): \(response.status)")
                    #expect(errorCode(response) != nil)
                }
            }
            for query in ["limit=0", "limit=1001", "after=x", "before=-3", "limit=1e9"] {
                #expect(try await get(messages, "/api/conversations/\(id)/messages?\(query)", alice).status == .badRequest, "\(query)")
            }
            #expect(try await messages.execute(uri: "/healthz", method: .get) { $0.status } == .ok)
        }
    }
}
