import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import PostgresSupport
import ServiceRuntime
import StackTesting
import Testing

@testable import NotificationsService

/// The user's stored notifications, as `GET /api/notifications` lists them.
func listNotifications(_ client: any TestClientProtocol, _ session: Session, query: String = "") async throws -> [[String: Any]] {
    try await client.execute(uri: "/api/notifications\(query)", method: .get, headers: session.bearer) { response in
        #expect(response.status == .ok)
        return json(response)["notifications"] as? [[String: Any]] ?? []
    }
}

func payload(_ notification: [String: Any]?) -> [String: Any] {
    notification?["payload"] as? [String: Any] ?? [:]
}

/// Sends a message over messages' HTTP path.
func post(_ messages: any TestClientProtocol, as session: Session, to conversationId: String, _ clientMsgId: String, _ body: String) async throws {
    let request = #"{"clientMsgId": "\#(clientMsgId)", "body": "\#(body)"}"#
    try await messages.execute(
        uri: "/api/conversations/\(conversationId)/messages", method: .post, headers: session.bearer.merging(jsonHeaders), body: ByteBuffer(string: request)
    ) { response in
        #expect(response.status == .created || response.status == .ok, "\(String(buffer: response.body))")
    }
}

/// Serialized with the chat suites' reasoning: each test runs its own messages service.
@Suite("notifications: stored per conversation for offline members, group and contact notices, read marks, the live stream", .serialized)
struct NotificationsTests {
    /// Whether notifications has applied a user's presence (its own copy, from presence.changed).
    func isOnline(_ harness: ServiceHarness, _ userId: String) async -> Bool {
        let online = try? await TestStack.withClient(schema: harness.notificationsSchema) { client in
            let rows = try await client.query("SELECT online FROM \(unescaped: harness.notificationsSchema.rawValue).presence WHERE user_id = \(userId)")
            for try await online in rows.decode(Bool.self) { return online }
            return false
        }
        return online ?? false
    }

    @Test(
        "offline members get one notification per conversation with a count, online ones none; group add/remove, contact added; read, read-all, another's id 404; live frames and presence only to those who share a conversation"
    )
    func storedAndLive() async throws {
        let harness = ServiceHarness()
        let socket = try await harness.socketApplication(instance: "n-chat")
        let notificationsApp = try await harness.notificationsApplication()
        let users = try await harness.usersApplication()
        // users and notifications first, so their queues are there when the users sign up; the
        // schemas and queues go once they have stopped too.
        try await harness.cleaningUp {
            try await users.test(.router) { usersClient in
                try await notificationsApp.test(.live) { notifications in
                    try await harness.runChat { auth, messages in
                        let alice = try await signUp(auth, username: TestStack.uniqueName("na"))
                        let bob = try await signUp(auth, username: TestStack.uniqueName("nb"))
                        let carol = try await signUp(auth, username: TestStack.uniqueName("nc"))
                        let mallory = try await signUp(auth, username: TestStack.uniqueName("nm"))
                        try await socket.test(.live) { chat in
                            let port = notifications.port!
                            let bobStream = ChatClient(port: port, session: bob, path: "/ws/notifications")
                            let malloryStream = ChatClient(port: port, session: mallory, path: "/ws/notifications")
                            let carolChat = ChatClient(port: chat.port!, session: carol)
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                for client in [bobStream, malloryStream] { group.addTask { try? await client.run() } }
                                #expect(await eventually { bobStream.isConnected && malloryStream.isConnected })

                                // Bob has no chat socket: three messages are one notification with count 3, pushed live too.
                                let direct = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
                                for index in 1...3 { try await post(messages, as: alice, to: direct, "d-\(index)", "hello \(index)") }
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        payload(try? await listNotifications(notifications, bob).first)["count"] as? Int == 3
                                    })
                                let bobList = try await listNotifications(notifications, bob)
                                #expect(bobList.count == 1)
                                let note = try #require(bobList.first)
                                #expect(note["kind"] as? String == "message" && note["read"] as? Bool == false)
                                #expect(payload(note)["conversationId"] as? String == direct)
                                #expect((payload(note)["lastMessage"] as? [String: Any])?["body"] as? String == "hello 3")
                                #expect(
                                    await eventually {
                                        bobStream.frames("notification").contains { payload($0["notification"] as? [String: Any])["count"] as? Int == 3 }
                                    })
                                #expect(try await listNotifications(notifications, alice).isEmpty)  // the sender gets none

                                // A group: Bob and Carol are told they were added.
                                let groupId = try await openConversation(
                                    messages, as: alice, #"{"type": "group", "name": "Plans", "memberIds": ["\#(bob.userId)", "\#(carol.userId)"]}"#
                                )
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, carol))?.contains { $0["kind"] as? String == "group_added" } == true
                                    })
                                let added = try #require(try await listNotifications(notifications, carol).first { $0["kind"] as? String == "group_added" })
                                #expect(payload(added)["conversationName"] as? String == "Plans" && payload(added)["actorId"] as? String == alice.userId)

                                // Carol opens a chat socket: she is online, and Bob (who shares the group) sees it; Mallory does not.
                                group.addTask { try? await carolChat.run() }
                                #expect(await eventually(timeout: .seconds(10)) { await isOnline(harness, carol.userId) })
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        bobStream.frames("presence").contains { $0["userId"] as? String == carol.userId && $0["online"] as? Bool == true }
                                    })
                                let presence = try #require(bobStream.frames("presence").first { $0["userId"] as? String == carol.userId })
                                #expect(presence["lastSeenAt"] is String)

                                // Two group messages: Bob (offline for chat) gets count 2; Carol (online) gets none stored.
                                for index in 1...2 { try await post(messages, as: alice, to: groupId, "g-\(index)", "group \(index)") }
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob))?.contains {
                                            $0["kind"] as? String == "message" && payload($0)["conversationId"] as? String == groupId
                                                && payload($0)["count"] as? Int == 2
                                        } == true
                                    })
                                #expect(try await listNotifications(notifications, carol).allSatisfy { $0["kind"] as? String != "message" })

                                // A message that reaches only Carol (online) is answered by one read and stores
                                // nothing; one to Bob after it (one consumer, in order) shows it was handled.
                                let toCarol = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(carol.userId)"}"#)
                                try await post(messages, as: alice, to: toCarol, "c-1", "only online")
                                try await post(messages, as: alice, to: direct, "d-after-online", "hello 4")
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        payload(try? await listNotifications(notifications, bob).first { payload($0)["conversationId"] as? String == direct })[
                                            "count"] as? Int == 4
                                    })
                                #expect(try await listNotifications(notifications, carol).allSatisfy { $0["kind"] as? String != "message" })

                                // Carol is removed: group_removed replaces group_added.
                                #expect(
                                    try await messages.execute(
                                        uri: "/api/conversations/\(groupId)/members/\(carol.userId)", method: .delete, headers: alice.bearer
                                    ) { $0.status } == .noContent)
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, carol))?.map { $0["kind"] as? String } == ["group_removed"]
                                    })

                                // Carol adds Bob as a contact: Bob is told who.
                                // (users learns of new users from user.registered: retried until it has.)
                                #expect(
                                    await eventually(timeout: .seconds(20)) {
                                        (try? await usersClient.execute(uri: "/api/users/me/contacts/\(bob.userId)", method: .put, headers: carol.bearer) {
                                            $0.status
                                        }) == .ok
                                    })
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob))?.contains {
                                            $0["kind"] as? String == "contact_added" && payload($0)["actorId"] as? String == carol.userId
                                        } == true
                                    })

                                // Read one; only unread ones are listed with unread=true; a new message restarts the count unread.
                                let directNote = try #require(
                                    try await listNotifications(notifications, bob).first { payload($0)["conversationId"] as? String == direct })
                                let noteId = try #require(directNote["id"] as? String)
                                try await notifications.execute(uri: "/api/notifications/\(noteId)/read", method: .post, headers: bob.bearer) { response in
                                    #expect(response.status == .ok)
                                    #expect((json(response)["notification"] as? [String: Any])?["read"] as? Bool == true)
                                }
                                #expect(try await listNotifications(notifications, bob, query: "?unread=true").allSatisfy { $0["id"] as? String != noteId })
                                try await post(messages, as: alice, to: direct, "d-4", "are you there?")
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob, query: "?unread=true"))?.contains {
                                            $0["id"] as? String == noteId && payload($0)["count"] as? Int == 1
                                        } == true
                                    })
                                // Paging: one at a time, newest change first, each seen once.
                                var seen: [String] = []
                                var cursor: String? = ""
                                while let next = cursor {
                                    let page = try await notifications.execute(
                                        uri: "/api/notifications?limit=1&cursor=\(next)", method: .get, headers: bob.bearer
                                    ) { json($0) }
                                    seen += (page["notifications"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                                    cursor = page["nextCursor"] as? String
                                }
                                #expect(seen.first == noteId && seen.count == 4 && Set(seen).count == 4)  // direct, group added, group messages, contact

                                // Another user's notification is not there for them.
                                try await notifications.execute(uri: "/api/notifications/\(noteId)/read", method: .post, headers: mallory.bearer) { response in
                                    #expect(response.status == .notFound && errorCode(response) == "not_found")
                                }
                                try await notifications.execute(uri: "/api/notifications?limit=0&unread=maybe", method: .get, headers: bob.bearer) { response in
                                    #expect(response.status == .badRequest)
                                }
                                try await notifications.execute(uri: "/api/notifications/read-all", method: .post, headers: bob.bearer) {
                                    #expect($0.status == .noContent)
                                }
                                #expect(try await listNotifications(notifications, bob, query: "?unread=true").isEmpty)
                                #expect(try await listNotifications(notifications, bob).count == 4)

                                // Reading the conversation in chat marks its notification read too.
                                try await post(messages, as: alice, to: direct, "d-5", "one more")
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob, query: "?unread=true"))?.count == 1
                                    })
                                let bobChat = ChatClient(port: chat.port!, session: bob)
                                group.addTask { try? await bobChat.run() }
                                #expect(await eventually { bobChat.isConnected })
                                try await bobChat.send(#"{"type": "read", "conversationId": "\#(direct)", "seq": 6}"#)
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob, query: "?unread=true"))?.isEmpty == true
                                    })
                                await bobChat.close()

                                // A later sign-in to Alice's account is a security notice; the one at her signup was not.
                                let signIn = #"{"login": "\#(alice.username)", "password": "correct horse battery"}"#
                                try await auth.execute(uri: "/api/auth/signin", method: .post, headers: jsonHeaders, body: ByteBuffer(string: signIn)) {
                                    #expect($0.status == .ok)
                                }
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, alice))?.map { $0["kind"] as? String } == ["signed_in"]
                                    })
                                #expect(payload(try await listNotifications(notifications, alice).first)["sessionId"] is String)

                                // Carol deletes her account: the notification she caused for Bob goes with her.
                                try await auth.execute(
                                    uri: "/api/auth/account", method: .delete, headers: carol.bearer.merging(jsonHeaders),
                                    body: ByteBuffer(string: #"{"password": "correct horse battery"}"#)
                                ) { #expect($0.status == .noContent) }
                                #expect(
                                    await eventually(timeout: .seconds(10)) {
                                        (try? await listNotifications(notifications, bob))?.contains { $0["kind"] as? String == "contact_added" } == false
                                    })
                                #expect(try await listNotifications(notifications, bob).count == 3)

                                #expect(malloryStream.frames("presence").isEmpty && malloryStream.frames("notification").isEmpty)
                                for client in [bobStream, malloryStream, carolChat] { await client.close() }
                                group.cancelAll()
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("the event path survives a RabbitMQ restart: messages sent before, during and after are each counted once")
    func survivesBrokerRestart() async throws {
        let harness = ServiceHarness()
        let notificationsApp = try await harness.notificationsApplication()
        // notifications first, so its queue is bound before the first message.stored (an event no
        // queue is bound for goes back to the producer's outbox, to be retried with backoff).
        try await harness.cleaningUp {
            try await notificationsApp.test(.router) { notifications in
                try await harness.runChat { auth, messages in
                    let alice = try await signUp(auth, username: TestStack.uniqueName("ra"))
                    let bob = try await signUp(auth, username: TestStack.uniqueName("rb"))
                    let direct = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
                    @Sendable func count() async -> Int? {
                        let list = try? await listNotifications(notifications, bob)
                        return list?.count == 1 ? payload(list?.first)["count"] as? Int : nil
                    }
                    for index in 1...10 { try await post(messages, as: alice, to: direct, "r-\(index)", "before \(index)") }
                    #expect(await eventually(timeout: .seconds(30)) { await count() == 10 })

                    // Sends are stored and queued in messages' outbox while the broker is down.
                    try await TestStack.kill(.rabbitmq)
                    for index in 11...20 { try await post(messages, as: alice, to: direct, "r-\(index)", "during \(index)") }
                    try await TestStack.start(.rabbitmq)
                    for index in 21...30 { try await post(messages, as: alice, to: direct, "r-\(index)", "after \(index)") }

                    let settled = await eventually(timeout: .seconds(60), every: .milliseconds(250)) { await count() == 30 }
                    let seen = await count()
                    #expect(settled, "count: \(String(describing: seen))")
                    // Nothing arrives twice later (a redelivery would raise the count).
                    try await Task.sleep(for: .seconds(2))
                    #expect(await count() == 30)
                    let last = try #require(try await listNotifications(notifications, bob).first)
                    #expect((payload(last)["lastMessage"] as? [String: Any])?["seq"] as? Int == 30)
                }
            }
        }
    }

    @Test("notifications down while chat goes on: chat is unaffected, and on its return notifications catches up with nothing lost")
    func catchesUpAfterOutage() async throws {
        let harness = ServiceHarness()
        let socket = try await harness.socketApplication(instance: "outage")
        try await harness.notificationsApplication().test(.router) { _ in }  // declares its queues, then stops
        try await harness.runChat { auth, messages in
            let alice = try await signUp(auth, username: TestStack.uniqueName("oa"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("ob"))
            let direct = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            // Chat works with notifications down: Alice's sends are acked.
            try await socket.test(.live) { chat in
                let aliceChat = ChatClient(port: chat.port!, session: alice)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try? await aliceChat.run() }
                    #expect(await eventually { aliceChat.isConnected })
                    for index in 1...5 {
                        try await aliceChat.send(
                            #"{"type": "send", "clientMsgId": "o-\#(index)", "conversationId": "\#(direct)", "body": "while down \#(index)"}"#)
                    }
                    #expect(await eventually(timeout: .seconds(10)) { aliceChat.frames("ack").count == 5 })
                    await aliceChat.close()
                    group.cancelAll()
                }
            }
            // notifications returns (same queue): it stores what it missed.
            try await harness.notificationsApplication().test(.router) { notifications in
                #expect(
                    await eventually(timeout: .seconds(15)) {
                        payload(try? await listNotifications(notifications, bob).first)["count"] as? Int == 5
                    })
            }
        }
    }

    @Test("a message notification counts messages whatever order their events come in; once read, only a newer message raises it")
    func messagesInAnyOrder() async throws {
        let schema = TestStack.uniqueSchema("notifications")
        try await TestStack.withDatabase(schema: schema) { client in
            try await NotificationsService.definition.migrate(TestStack.database(schema: schema), logger: TestStack.logger)
            let store = NotificationsStore(logger: TestStack.logger)
            func arrive(_ seq: Int64) async throws {
                let message = MessageRecord(
                    id: "m\(seq)", conversationId: "c", seq: seq, senderId: "a", clientMsgId: "k\(seq)", body: "\(seq)", sentAt: Date())
                let stored = [MessageStored(message: message, memberIds: ["a", "b"])]
                _ = try await client.withConnection { try await store.recordMessages(stored, offline: ["b"], on: $0) }
            }
            /// b's notification: its count, last seq, the seq its payload shows, and whether it is read.
            func notification() async throws -> String {
                let rows = try await client.query("SELECT count, last_seq, payload->'lastMessage'->>'seq', read FROM notifications WHERE user_id = 'b'")
                return try await rows.decode((Int, Int64, String, Bool).self).reduce(into: "") { text, row in
                    text += "\(row.0) to \(row.1), shows \(row.2)\(row.3 ? ", read" : "")"
                }
            }

            try await arrive(3)
            try await arrive(2)  // late (published after its hold, say): counted, the newer one still shown
            #expect(try await notification() == "2 to 3, shows 3")
            try await arrive(5)
            #expect(try await notification() == "3 to 5, shows 5")
            _ = try await client.withConnection { try await store.markConversationRead("c", by: "b", upTo: 5, on: $0) }
            try await arrive(4)  // late, and read already: nothing changes
            #expect(try await notification() == "3 to 5, shows 5, read")
            try await arrive(6)
            #expect(try await notification() == "1 to 6, shows 6")
        }
    }

    @Test(
        "events about an account that come after its deletion keep and store nothing about it: its last presence, a group snapshot, contacts, sign-ins, a message"
    )
    func nothingKeptAfterDeletion() async throws {
        let schema = TestStack.uniqueSchema("notifications")
        try await TestStack.withDatabase(schema: schema) { client in
            try await NotificationsService.definition.migrate(TestStack.database(schema: schema), logger: TestStack.logger)
            let rules = NotificationRules(store: NotificationsStore(logger: TestStack.logger))
            func apply(_ events: [NotificationEventsHandler.Event]) async throws {
                try await client.transaction(logger: TestStack.logger) { connection in
                    for event in events { _ = try await rules.apply(event, at: Date(), on: connection) }
                }
            }
            let members = [ConversationMember(userId: "gone", role: "admin"), ConversationMember(userId: "b", role: "member")]
            let group = ConversationSnapshot(id: "g", type: "group", name: "G", members: members)
            try await apply([.loggedIn(UserLoggedIn(userId: "gone", sessionId: "s1")), .deleted(UserDeleted(userId: "gone"))])
            // Late, from other services: the sockets' last "offline", a rename, a contact added a
            // moment before (both ways), a sign-in, and a message to the group.
            let message = MessageRecord(id: "m1", conversationId: "g", seq: 1, senderId: "b", clientMsgId: "k1", body: "hi", sentAt: Date())
            try await apply([
                .presence(PresenceChanged(userId: "gone", online: false, lastSeenAt: Date())),
                .renamed(ConversationRenamed(conversation: group, actorId: "b")),
                .contactAdded(ContactAdded(ownerId: "gone", contactId: "b")), .contactAdded(ContactAdded(ownerId: "b", contactId: "gone")),
                .loggedIn(UserLoggedIn(userId: "gone", sessionId: "s2")),
                .stored(MessageStored(message: message, memberIds: ["b", "gone"])),  // stored before messages heard of the deletion
            ])
            let rows = try await client.query(
                """
                SELECT 'presence' FROM presence WHERE user_id = 'gone'
                UNION ALL SELECT 'member' FROM conversation_members WHERE user_id = 'gone'
                UNION ALL SELECT 'contact' FROM contacts WHERE 'gone' IN (owner_id, contact_id)
                UNION ALL SELECT 'signed in' FROM signed_in_before WHERE user_id = 'gone'
                UNION ALL SELECT 'notification ' || kind FROM notifications WHERE 'gone' IN (user_id, actor_id)
                """)
            #expect(try await rows.decode(String.self).reduce(into: []) { $0.append($1) } == [])
            // The others keep what is theirs: b is still a member of the group.
            let kept = try await client.query("SELECT user_id FROM conversation_members WHERE conversation_id = 'g'")
            #expect(try await kept.decode(String.self).reduce(into: []) { $0.append($1) } == ["b"])
        }
    }

    @Test("who is offline is looked up by key: statistics taken while everyone was offline do not turn it into a scan per id")
    func offlineLookupPlan() async throws {
        let schema = TestStack.uniqueSchema("notifications")
        try await TestStack.withDatabase(schema: schema) { client in
            try await NotificationsService.definition.migrate(TestStack.database(schema: schema), logger: TestStack.logger)
            let presence = "\(schema.rawValue).presence"
            // Everyone signed up and offline when the statistics are taken, then online.
            try await client.query("INSERT INTO \(unescaped: presence) SELECT 'u' || i, false, now() FROM generate_series(1, 2000) i")
            try await client.query("ANALYZE \(unescaped: presence)")
            try await client.query("UPDATE \(unescaped: presence) SET online = true WHERE substr(user_id, 2)::int <= 1000")
            let ids = (1...190).map { "u\($0 * 10)" } + ["nobody"]  // u10 … u1000 online, u1010 … u1900 not
            let sql = NotificationStatements.OfflineUsers.sql.replacingOccurrences(of: "presence", with: presence)
            let binds = NotificationStatements.OfflineUsers(ids: ids).makeBindings()
            var plan = ""
            for try await line in try await client.query(PostgresQuery(unsafeSQL: "EXPLAIN \(sql)", binds: binds)).decode(String.self) {
                plan += line + "\n"
            }
            // A nested loop reading the presence rows again for each id is what the old form made.
            #expect(!plan.contains("Nested Loop") || plan.contains("Index"), "\(plan)")
            var offline: Set<String> = []
            for try await id in try await client.query(PostgresQuery(unsafeSQL: sql, binds: binds)).decode(String.self) {
                offline.insert(id)
            }
            #expect(offline == Set((101...190).map { "u\($0 * 10)" } + ["nobody"]))
        }
    }
}
