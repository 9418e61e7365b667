import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import PostgresSupport
import ServiceRuntime
import StackTesting
import Synchronization
import Testing

@testable import MessagesService

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
        try await withMessagesSchema { client, _ in
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
                    let waited = try await waitsForALock(client, "pid = \(senderPid)")
                    try await remover.query("COMMIT", logger: TestStack.logger)
                    #expect(waited, "the batch never waited for the removal's lock")
                    #expect(try await read == ["a"])
                }
            }
        }
    }

    @Test("store_messages writes a batch (messages, last_seq, the senders' markers only) with plans made once per connection")
    func storeMessagesWritesTheBatch() async throws {
        try await withMessagesSchema { client, schema in
            try await client.query("INSERT INTO conversations (id, type) VALUES ('c1', 'group'), ('c2', 'direct'), ('c3', 'direct')")
            try await client.query(
                "INSERT INTO members (conversation_id, user_id, role) VALUES ('c1', 'a', 'admin'), ('c1', 'b', 'member'), ('c2', 'a', 'member'), ('c2', 'c', 'member'), ('c3', 'b', 'member')"
            )
            // a sends twice to c1 and once to c2, b once to c1; c3 is left alone.
            try await client.query(
                """
                SELECT store_messages(
                    ARRAY['m1', 'm2', 'm3', 'm4'], ARRAY['c1', 'c1', 'c2', 'c1'], ARRAY[1, 2, 1, 3]::int8[], ARRAY['a', 'b', 'a', 'a'],
                    ARRAY['k1', 'k1', 'k2', 'k3'], ARRAY['one', 'two', 'three', 'four'], '2026-01-02 03:04:05+00',
                    ARRAY['c1', 'c2'], ARRAY[3, 1]::int8[], ARRAY['c1', 'c1', 'c2'], ARRAY['a', 'b', 'a'], ARRAY[3, 2, 1]::int8[])
                """)
            let stored = try await client.query("SELECT id, conversation_id, seq, sender_id, client_msg_id, body FROM messages ORDER BY id")
            var messages: [String] = []
            for try await (id, conversation, seq, sender, clientId, body) in stored.decode((String, String, Int64, String, String, String).self) {
                messages.append("\(id) \(conversation)#\(seq) \(sender)/\(clientId) \(body)")
            }
            #expect(messages == ["m1 c1#1 a/k1 one", "m2 c1#2 b/k1 two", "m3 c2#1 a/k2 three", "m4 c1#3 a/k3 four"])
            var lastSeqs: [String] = []
            for try await (id, seq, activity) in try await client.query("SELECT id, last_seq, last_activity FROM conversations ORDER BY id")
                .decode((String, Int64, Date).self)
            {
                lastSeqs.append("\(id)=\(seq)\(activity == Date(timeIntervalSince1970: 1_767_323_045) ? " now" : "")")
            }
            #expect(lastSeqs == ["c1=3 now", "c2=1 now", "c3=0"])
            var markers: [String] = []
            for try await (conversation, user, delivered, read) in try await client.query(
                "SELECT conversation_id, user_id, delivered_seq, read_seq FROM members ORDER BY conversation_id, user_id"
            ).decode((String, String, Int64, Int64).self) {
                markers.append("\(conversation)/\(user) \(delivered)/\(read)")
            }
            #expect(markers == ["c1/a 3/3", "c1/b 2/2", "c2/a 1/1", "c2/c 0/0", "c3/b 0/0"])
            // The repeat of a (sender, clientMsgId) fails on its key, which MessagesStore turns into a retry.
            let repeated = await #expect(throws: PSQLError.self) {
                // The error comes with the rows, after their description.
                for try await _ in try await client.query(
                    "SELECT store_messages(ARRAY['m5'], ARRAY['c1'], ARRAY[4]::int8[], ARRAY['a'], ARRAY['k1'], ARRAY['again'], now(), ARRAY['c1'], ARRAY[4]::int8[], ARRAY['c1'], ARRAY['a'], ARRAY[4]::int8[])"
                ) {}
            }
            #expect(repeated?.serverInfo?[.constraintName] == "messages_sender_id_client_msg_id_key")
            // Both of the store's functions plan their statements once per connection.
            var settings: [String] = []
            for try await (name, config) in try await client.query(
                "SELECT proname::text, array_to_string(proconfig, ',') FROM pg_proc WHERE pronamespace = \(schema.rawValue)::regnamespace ORDER BY proname"
            ).decode((String, String?).self) {
                settings.append("\(name): \(config ?? "")")
            }
            #expect(
                settings == [
                    "lock_with_members: plan_cache_mode=force_generic_plan", "member_account_deleted: ", "members_changed: ",
                    "store_messages: plan_cache_mode=force_generic_plan", "store_messages_as_known: plan_cache_mode=force_generic_plan",
                ])
        }
    }

    @Test(
        "a batch built from what messages knew of its conversations is stored in one statement only while they are so: a send, a member added, removed or deleted since sends it the long way"
    )
    func storedAsKnownOnlyWhileKnown() async throws {
        try await withMessagesSchema { client, _ in
            try await seedGroup(client, users: ["a", "b", "c"], members: ["a", "b"])
            let store = MessagesStore(logger: TestStack.logger)
            var next = 0
            func sends(_ count: Int) -> [MessageSent] {
                defer { next += count }
                return (next..<next + count).map { MessageSent(senderId: "a", clientMsgId: "k\($0)", conversationId: "g", body: "m\($0)", instanceId: "") }
            }
            func asKnown() async throws -> MessagesStore.AsKnown {
                try await store.storeAsKnown(sends(2), at: Date(), announcing: Self.announcing, client: client)
            }
            func theLongWay() async throws -> StoredSends {
                let batch = sends(2)
                return try await client.withTransaction(logger: TestStack.logger) { connection in
                    try await store.store(batch, at: Date(), lookingUpRetries: false, announcing: Self.announcing, on: connection)
                }
            }
            func count(_ table: String) async throws -> Int64 {
                try await client.query("SELECT count(*) FROM \(unescaped: table)").decode(Int64.self).reduce(0, +)
            }
            func stored(_ outcome: MessagesStore.AsKnown) -> [String] {
                guard case .stored(let batch) = outcome else { return ["\(outcome)"] }
                return batch.results.map { result in
                    if case .stored(let message, let members) = result { "\(message.seq) to \(members.joined(separator: ","))" } else { "\(result)" }
                }
            }

            // Not known yet: nothing written. The long way makes it known; then one statement does.
            #expect(try await asKnown() == .unknown)
            #expect(stored(.stored(try await theLongWay())) == ["1 to a,b", "2 to a,b"])
            #expect(stored(try await asKnown()) == ["3 to a,b", "4 to a,b"])
            #expect(stored(try await asKnown()) == ["5 to a,b", "6 to a,b"])
            #expect(try await count("messages") == 6)
            #expect(try await count("outbox") == 3)
            // Both ways write the rows handed off: held from the relay's rounds, for the hand-off.
            let held = try await client.query("SELECT count(*) FROM outbox WHERE next_attempt_at > now() + interval '5 seconds'")
            #expect(try await held.decode(Int64.self).reduce(0, +) == 3)
            // A repeat of a stored send (k2: k0 and k1 were never stored), or a send the known
            // members would refuse: nothing written, and the long way decides (looking them up).
            let again = MessageSent(senderId: "a", clientMsgId: "k2", conversationId: "g", body: "again", instanceId: "")
            let stranger = MessageSent(senderId: "c", clientMsgId: "s0", conversationId: "g", body: "let me in", instanceId: "")
            for sends in [[again], [stranger]] {
                let outcome = try await store.storeAsKnown(sends, at: Date(), announcing: Self.announcing, client: client)
                #expect(outcome == .mayHoldRetries, "\(sends[0].clientMsgId): \(outcome)")
            }
            #expect(try await count("messages") == 6)
            #expect(try await count("outbox") == 3)

            // Each change since: the batch writes nothing (not even its outbox row), and the next
            // one goes the long way, which sees the change and makes it known again.
            let changes = [
                "DELETE FROM members WHERE conversation_id = 'g' AND user_id = 'b'",
                "INSERT INTO members (conversation_id, user_id, role) VALUES ('g', 'c', 'member')",
                "UPDATE known_users SET deleted_at = now() WHERE id = 'c'",
                "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = 'g'",  // another writer's message
            ]
            var seq: Int64 = 6
            for change in changes {
                try await client.query(PostgresQuery(unsafeSQL: change))
                if change.contains("last_seq") { seq += 1 }
                let (messages, outbox) = (try await count("messages"), try await count("outbox"))
                #expect(try await asKnown() == .stale, "\(change)")
                #expect(try await count("messages") == messages)
                #expect(try await count("outbox") == outbox)
                #expect(try await asKnown() == .unknown, "forgotten once found out of date")
                let members = change.contains("'b'") || change.contains("last_seq") ? "a" : change.contains("deleted_at") ? "a" : "a,c"
                #expect(stored(.stored(try await theLongWay())) == ["\(seq + 1) to \(members)", "\(seq + 2) to \(members)"], "\(change)")
                #expect(stored(try await asKnown()) == ["\(seq + 3) to \(members)", "\(seq + 4) to \(members)"], "\(change)")
                seq += 4
            }
            // A receipt marker moving (as every stored batch moves its sender's) changes nothing known.
            try await client.query("UPDATE members SET read_seq = read_seq + 1 WHERE conversation_id = 'g' AND user_id = 'a'")
            #expect(stored(try await asKnown()).count == 2)
        }
    }

    @Test("a batch stored as known checks its conversations after their locks: a removal committed while it waited is seen, nothing written")
    func asKnownChecksAfterTheLock() async throws {
        try await withMessagesSchema { client, _ in
            try await seedGroup(client, users: ["a", "b"], members: ["a", "b"])
            let store = MessagesStore(logger: TestStack.logger)
            func send(_ key: String) -> [MessageSent] {
                [MessageSent(senderId: "a", clientMsgId: key, conversationId: "g", body: key, instanceId: "")]
            }
            _ = try await client.withTransaction(logger: TestStack.logger) {
                try await store.store(send("first"), at: Date(), lookingUpRetries: false, announcing: Self.announcing, on: $0)
            }
            try await client.withConnection { remover in
                // A removal holds the conversation's lock, as MessagesStore's do, with b removed.
                try await remover.query("BEGIN", logger: TestStack.logger)
                try await remover.query("SELECT 1 FROM conversations WHERE id = 'g' FOR UPDATE", logger: TestStack.logger)
                try await remover.query("DELETE FROM members WHERE conversation_id = 'g' AND user_id = 'b'", logger: TestStack.logger)
                async let outcome = store.storeAsKnown(send("second"), at: Date(), announcing: Self.announcing, client: client)
                // The batch waits for the lock; then the removal commits.
                let waited = try await waitsForALock(client, "query LIKE '%store_messages_as_known%'")
                try await remover.query("COMMIT", logger: TestStack.logger)
                #expect(waited, "the batch never waited for the removal's lock")
                #expect(try await outcome == .stale)
            }
            let stored = try await client.query("SELECT count(*) FROM messages").decode(Int64.self).reduce(0, +)
            #expect(stored == 1, "the batch built before the removal wrote nothing")
        }
    }

    @Test("an account deleted while it is being added to a conversation waits, then moves that conversation's members' version")
    func deletionWaitsForAJoin() async throws {
        try await withMessagesSchema { client, _ in
            try await seedGroup(client, users: ["a", "u"], members: ["a"])
            func version() async throws -> Int64 {
                try await client.query("SELECT members_version FROM conversations WHERE id = 'g'").decode(Int64.self).reduce(0, +)
            }
            let before = try await version()
            let store = MessagesStore(logger: TestStack.logger)
            try await client.withConnection { joiner in
                try await client.withConnection { deleter in
                    var deleterPid: Int32 = 0
                    for try await pid in try await deleter.query("SELECT pg_backend_pid()", logger: TestStack.logger).decode(Int32.self) { deleterPid = pid }
                    // u is added to g, as addMember does, and not yet committed.
                    try await joiner.query("BEGIN", logger: TestStack.logger)
                    try await joiner.query("SELECT 1 FROM conversations WHERE id = 'g' FOR UPDATE", logger: TestStack.logger)
                    #expect(try await store.knownUsers(["u"], on: joiner) == ["u"])
                    _ = try await store.addMember("u", to: "g", on: joiner)
                    // Meanwhile u's account is deleted, as markDeleted does: it waits for the join.
                    async let deleted = deleter.query("UPDATE known_users SET deleted_at = now() WHERE id = 'u'", logger: TestStack.logger)
                    let waited = try await waitsForALock(client, "pid = \(deleterPid)")
                    try await joiner.query("COMMIT", logger: TestStack.logger)
                    for try await _ in try await deleted {}
                    #expect(waited, "the deletion did not wait for the join")
                }
            }
            // The join moved it once, and the deletion, which saw u as a member of g, once more.
            #expect(try await version() == before + 2)
        }
    }

    /// What `MessageSending` announces a stored batch with: one envelope.
    private static let announcing: @Sendable ([MessageStored]) throws -> [OutgoingMessage] = {
        [try OutgoingMessage(EventBatchEnvelope(producer: "test", payloads: $0))]
    }

    /// Group `g` with `members` (the first its admin), and `users` known to messages.
    private func seedGroup(_ client: PostgresClient, users: [String], members: [String]) async throws {
        try await client.query("INSERT INTO known_users (id, username) SELECT id, id FROM unnest(\(users)) AS u(id)")
        try await client.query("INSERT INTO conversations (id, type) VALUES ('g', 'group')")
        let roles = members.indices.map { $0 == 0 ? "admin" : "member" }
        try await client.query("INSERT INTO members (conversation_id, user_id, role) SELECT 'g', * FROM unnest(\(members), \(roles))")
    }

    /// Whether a backend that `condition` picks out of `pg_stat_activity` comes to wait for a lock
    /// within 10 s: read until it does, every 10 ms.
    private func waitsForALock(_ client: PostgresClient, _ condition: String) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let waiting = try await client.query(
                PostgresQuery(unsafeSQL: "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND \(condition)"))
            if try await waiting.decode(Int64.self).reduce(0, +) > 0 { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// A messages schema of its own, migrated, for a test that works on its tables directly.
    private func withMessagesSchema(_ body: @Sendable (PostgresClient, SchemaName) async throws -> Void) async throws {
        let schema = TestStack.uniqueSchema("messages")
        try await TestStack.withDatabase(schema: schema) { client in
            try await MessagesService.definition.migrate(TestStack.database(schema: schema), logger: TestStack.logger)
            try await body(client, schema)
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
