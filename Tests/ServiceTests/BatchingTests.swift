import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import MessagesService
import PostgresNIO
import PostgresSupport
import ServiceRuntime
import StackTesting
import Synchronization
import Testing

/// Issue 9: the batch-first path keeps one bad item to itself, and the limits fit real use.
@Suite("batch-first chat: a failing item is isolated, groups of 1,024, history pages of 1,000", .serialized)
struct BatchingTests {
    @Test("a failing send in a batch of other users' sends: only it is dead-lettered, its sender is told, nobody else waits")
    func failingItemIsIsolated() async throws {
        let harness = ServiceHarness()
        try await harness.runAll { services in
            let users = try await (0..<8).asyncMap { _ in try await signUp(services.auth, username: TestStack.uniqueName("bi")) }
            let conversations = try await (0..<4).asyncMap { pair in
                try await openConversation(services.messages, as: users[2 * pair], #"{"type": "direct", "userId": "\#(users[2 * pair + 1].userId)"}"#)
            }
            let clients = users.map { ChatClient(port: services.chatPort, session: $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.run() } }
                #expect(await eventually { clients.allSatisfy(\.isConnected) })
                // One broker message as socket-handler would publish it: 20 sends, one of them bad
                // (a NUL byte that the socket's own checks would have refused), the others good.
                let instance = "\(harness.namespace)-all"
                var batch = (0..<20).map { k in
                    MessageSent(senderId: users[6].userId, clientMsgId: "raw\(k)", conversationId: conversations[3], body: "raw \(k)", instanceId: instance)
                }
                batch[7] = MessageSent(
                    senderId: users[0].userId, clientMsgId: "poison", conversationId: conversations[0], body: "bad\u{0}body", instanceId: instance)
                let publisher = EventPublisher(configuration: TestStack.amqp(), logger: TestStack.logger)
                let sentAt = ContinuousClock.now
                _ = try await publisher.publish([OutgoingMessage(EventBatchEnvelope(producer: "test", payloads: batch))])
                await publisher.shutdown()
                // Meanwhile 120 good sends from everyone over their sockets.
                for round in 0..<15 {
                    for (index, client) in clients.enumerated() {
                        try await client.send(
                            #"{"type": "send", "clientMsgId": "g\#(round)", "conversationId": "\#(conversations[index / 2])", "body": "good \#(round)"}"#)
                    }
                }
                #expect(
                    await eventually(timeout: .seconds(20)) { clients.allSatisfy { $0.frames("ack").count == 15 } },
                    "acks: \(clients.map { $0.frames("ack").count })")
                let elapsed = ContinuousClock.now - sentAt
                print("120 good sends acked within \(elapsed) of a batch with a failing item")
                #expect(elapsed < .seconds(5), "good sends waited on the bad one")
                // The bad one's sender is told; the 19 good ones of that batch are stored once.
                #expect(await eventually { clients[0].frames("error").contains { $0["clientMsgId"] as? String == "poison" } })
                #expect(clients[0].frames("error").first { $0["clientMsgId"] as? String == "poison" }?["code"] as? String == "invalid_message")
                #expect(
                    await eventually {
                        let history = try? await call(services.messages, .get, "/api/conversations/\(conversations[3])/messages?limit=1000", users[6])
                        let messages = history?.json["messages"] as? [[String: Any]] ?? []
                        let keys = messages.compactMap { message in (message["senderId"] as? String).map { "\($0)/\(message["clientMsgId"] as? String ?? "")" }
                        }
                        return keys.filter { $0.contains("/raw") }.count == 19 && Set(keys).count == keys.count
                    })
                let first = try await call(services.messages, .get, "/api/conversations/\(conversations[0])/messages?limit=1000", users[0])
                #expect(!((first.json["messages"] as? [[String: Any]]) ?? []).contains { $0["clientMsgId"] as? String == "poison" })
                group.cancelAll()
            }
        }
    }

    @Test("a batch reads its members after its locks: a removal committed while the batch waited for the lock is seen")
    func membersReadAfterTheLock() async throws {
        let schema = TestStack.uniqueSchema("messages")
        try await TestStack.withDatabase(schema: schema) { client in
            try await MessagesService.definition.migrate(TestStack.database(schema: schema), logger: TestStack.logger)
            try await client.query("INSERT INTO conversations (id, type) VALUES ('c1', 'group')")
            try await client.query("INSERT INTO members (conversation_id, user_id, role) VALUES ('c1', 'a', 'admin'), ('c1', 'b', 'member')")
            try await client.withConnection { remover in
                try await client.withConnection { sender in
                    // Should the test fail midway, the batch gives up waiting rather than hang it.
                    try await sender.query("SET lock_timeout = '20s'", logger: TestStack.logger)
                    var senderPid: Int32 = 0
                    for try await pid in try await sender.query("SELECT pg_backend_pid()", logger: TestStack.logger).decode(Int32.self) { senderPid = pid }
                    // A removal holds the conversation's lock, as MessagesStore's do, with b removed.
                    try await remover.query("BEGIN", logger: TestStack.logger)
                    try await remover.query("SELECT 1 FROM conversations WHERE id = 'c1' FOR UPDATE", logger: TestStack.logger)
                    try await remover.query("DELETE FROM members WHERE conversation_id = 'c1' AND user_id = 'b'", logger: TestStack.logger)
                    async let read: [String?] = {
                        var users: [String?] = []
                        let rows = try await sender.query("SELECT user_id FROM lock_with_members(ARRAY['c1'])", logger: TestStack.logger)
                        for try await user in rows.decode(String?.self) { users.append(user) }
                        return users
                    }()
                    // The batch waits for the lock; then the removal commits.
                    var waited = false
                    let deadline = ContinuousClock.now + .seconds(10)
                    while !waited, ContinuousClock.now < deadline {
                        let waiting = try await client.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(senderPid) AND wait_event_type = 'Lock'")
                        waited = try await waiting.decode(Int64.self).reduce(0, +) > 0
                        if !waited { try await Task.sleep(for: .milliseconds(10)) }
                    }
                    try await remover.query("COMMIT", logger: TestStack.logger)
                    #expect(waited, "the batch never waited for the removal's lock")
                    #expect(try await read == ["a"])
                }
            }
        }
    }

    @Test("a group of 1,024 members (the 1,025th is refused) and history pages of up to 1,000 messages")
    func limitsForRealUse() async throws {
        let harness = ServiceHarness()
        try await harness.runChat { auth, messages in
            let alice = try await signUp(auth, username: TestStack.uniqueName("lg"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("lg"))
            // 1,024 users messages knows of (as if they had signed up), without 1,024 bcrypts.
            let others = (0..<1_024).map { "bulk-\(harness.namespace)-\($0)" }
            _ = try await TestStack.withClient(schema: harness.messagesSchema) { client in
                try await client.query(
                    "INSERT INTO \(unescaped: harness.messagesSchema.rawValue).known_users (id, username) SELECT id, id FROM unnest(\(others)) AS u(id)"
                )
            }
            let list = others.prefix(1_023).map { #""\#($0)""# }.joined(separator: ",")
            let created = try await call(messages, .post, "/api/conversations", alice, #"{"type": "group", "name": "everyone", "memberIds": [\#(list)]}"#)
            #expect(created.status == 201)
            let group = try #require((created.json["conversation"] as? [String: Any]))
            #expect((group["members"] as? [Any])?.count == 1_024)
            let id = try #require(group["id"] as? String)
            let full = try await call(messages, .post, "/api/conversations/\(id)/members", alice, #"{"userId": "\#(others[1_023])"}"#)
            #expect(full.status == 409 && code(full) == "group_full")
            let tooMany = try await call(
                messages, .post, "/api/conversations", alice,
                #"{"type": "group", "name": "too many", "memberIds": [\#(others.map { #""\#($0)""# }.joined(separator: ","))]}"#)
            #expect(tooMany.status == 400)

            // 1,000 messages come back in one page.
            let direct = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            try await withThrowingTaskGroup(of: Void.self) { sends in
                for worker in 0..<8 {
                    sends.addTask {
                        for k in stride(from: worker, to: 1_000, by: 8) {
                            let status = try await call(
                                messages, .post, "/api/conversations/\(direct)/messages", alice, #"{"clientMsgId": "h\#(k)", "body": "history \#(k)"}"#
                            ).status
                            #expect(status == 201)
                        }
                    }
                }
                try await sends.waitForAll()
            }
            let page = try await call(messages, .get, "/api/conversations/\(direct)/messages?after=0&limit=1000", bob)
            #expect((page.json["messages"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == Array(1...1_000))
            #expect(try await call(messages, .get, "/api/conversations/\(direct)/messages?limit=1001", bob).status == 400)
        }
    }
}

extension Range where Bound == Int {
    /// `transform` over the range, one at a time, in order.
    func asyncMap<Element>(_ transform: (Int) async throws -> Element) async rethrows -> [Element] {
        var results: [Element] = []
        for index in self { results.append(try await transform(index)) }
        return results
    }
}
