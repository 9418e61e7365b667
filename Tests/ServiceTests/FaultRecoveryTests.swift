import AuthService
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import PostgresSupport
import RedisClient
import SocketHandlerService
import StackTesting
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Issue 10: what broke when Postgres, Redis and slow clients were killed or stalled mid-burst, each
/// fault injected into the real servers by pid, each recovery bounded and printed.
@Suite("fault recovery: Postgres, Redis, slow readers, removals, restarts", .serialized)
struct FaultRecoveryTests {
    @Test("Postgres SIGKILLed mid-burst: the outbox relay resumes, every acked message is stored once in order, and SIGTERM still ends messages in time")
    func postgresKilledMidBurst() async throws {
        let harness = ServiceHarness()
        let base = TestStack.freePorts(2)
        let messages = harness.messagesProcess(port: base)
        let socket = harness.socketHandlerProcess("pg", port: base + 1)
        try await messages.start()
        try await socket.start()
        defer {
            messages.stop()
            socket.stop()
        }
        let auth = try await harness.authApplication()
        try await auth.test(.router) { authClient in
            let alice = try await signUp(authClient, username: TestStack.uniqueName("pk"))
            let bob = try await signUp(authClient, username: TestStack.uniqueName("pk"))
            let id = try await harness.openConversation(port: base, alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            let sender = RetryingSender(port: socket.port, session: alice, conversationId: id)
            var recovery: Duration?
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    try await sender.send("pk-\(index)", in: &group)
                    if index == 20 {
                        try await TestStack.kill(.postgres)
                        try await TestStack.start(.postgres)
                        let back = ContinuousClock.now
                        try await sender.send("pk-after", in: &group)
                        recovery = ContinuousClock.now - back
                    }
                }
                group.cancelAll()
            }
            print("Postgres killed and restarted: the next send was acked \(recovery.map { "\($0)" } ?? "never") after Postgres was back")
            #expect(try #require(recovery) < .seconds(30))
            let stored = await harness.history(port: base, id, bob)
            let expected = (0...20).map { "pk-\($0)" } + ["pk-after"] + (21..<60).map { "pk-\($0)" }
            #expect(stored.compactMap { $0["clientMsgId"] as? String } == expected)
            #expect(stored.compactMap { $0["seq"] as? Int } == Array(1...expected.count))
            // The relay shows no backlog and is alive.
            #expect(await eventually(timeout: .seconds(25)) { await plainGet("http://127.0.0.1:\(base)/metrics").contains("swiftchat_outbox_backlog 0") })
            #expect(await plainStatus("http://127.0.0.1:\(base)/healthz") == 200)
            // Its rounds that published, and the broker's part of them, are timed (the bench's stages).
            let metrics = await plainGet("http://127.0.0.1:\(base)/metrics")
            for timer in ["swiftchat_outbox_round_seconds_count", "swiftchat_outbox_publish_seconds_count"] {
                let count = metricValue(timer, in: metrics)
                #expect((count ?? 0) >= 1, "\(timer): \(count.map { "\($0)" } ?? "absent")")
            }
        }
        // SIGTERM ends it within its grace period, whatever it was waiting on.
        let stopping = ContinuousClock.now
        messages.stop()
        #expect(ContinuousClock.now - stopping < .seconds(25))
        await harness.cleanUp()
    }

    @Test("a removed member receives nothing stored after the removal, however the sends and the removal interleave")
    func removedMemberHearsNothingMore() async throws {
        let harness = ServiceHarness()
        try await harness.runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("rm"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("rm"))
            let carol = try await signUp(services.auth, username: TestStack.uniqueName("rm"))
            let created = try await call(
                services.messages, .post, "/api/conversations", alice,
                #"{"type": "group", "name": "removal", "memberIds": ["\#(bob.userId)", "\#(carol.userId)"]}"#)
            let id = try #require((created.json["conversation"] as? [String: Any])?["id"] as? String)
            let clients = [alice, bob, carol].map { ChatClient(port: services.chatPort, session: $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.run() } }
                #expect(await eventually { clients.allSatisfy(\.isConnected) })
                // Alice and Carol send 100 each; Bob is removed while they do.
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    for (name, client) in [("a", clients[0]), ("c", clients[2])] {
                        senders.addTask {
                            for k in 0..<100 {
                                try await client.send(
                                    #"{"type": "send", "clientMsgId": "\#(name)\#(k)", "conversationId": "\#(id)", "body": "\#(name) \#(k)"}"#)
                                try await Task.sleep(for: .milliseconds(5))
                            }
                        }
                    }
                    senders.addTask {
                        // Mid-stream: once a fair share of the sends is stored.
                        _ = await eventually(timeout: .seconds(10), every: .milliseconds(5)) { clients[0].frames("ack").count >= 30 }
                        let removed = try await call(services.messages, .delete, "/api/conversations/\(id)/members/\(bob.userId)", alice).status
                        #expect(removed == 204)
                    }
                    try await senders.waitForAll()
                }
                #expect(await eventually(timeout: .seconds(20)) { clients[0].frames("ack").count == 100 && clients[2].frames("ack").count == 100 })
                #expect(await eventually { clients[1].frames("conversation").contains { $0["event"] as? String == "member_removed" } })
                let removal = try #require(clients[1].frames("conversation").first { $0["event"] as? String == "member_removed" })
                let removedAt = try #require((removal["conversation"] as? [String: Any])?["lastSeq"] as? Int)
                #expect((1..<200).contains(removedAt), "the removal should land mid-stream (at \(removedAt))")
                try await Task.sleep(for: .milliseconds(500))
                let seen = clients[1].frames("message").compactMap { ($0["message"] as? [String: Any])?["seq"] as? Int }
                #expect(seen.allSatisfy { $0 <= removedAt }, "bob received seqs \(seen.filter { $0 > removedAt }) after his removal at \(removedAt)")
                print("removed at seq \(removedAt) of 200; bob saw \(seen.count) messages, none after")
                group.cancelAll()
            }
        }
    }

    @Test("a client that stops reading is cut off when a write to it stalls past the deadline, and the sender is never held up")
    func slowReaderIsCutOff() async throws {
        let harness = ServiceHarness()
        var limits = ChatSocketLimits()
        limits.writeDeadline = .seconds(2)
        try await harness.runAll(chatLimits: limits) { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("sr"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("sr"))
            let id = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            let redis = RedisClient(configuration: TestStack.redis())
            let bobSockets = "\(harness.namespace)_socket:sockets:chat:\(bob.userId)"
            // Bob upgrades and then never reads a byte.
            let deaf = try #require(try await DeafClient.connect(port: services.chatPort, token: bob.accessToken))
            #expect(await eventually { (try? await redis.command(["ZCARD", bobSockets]).integer) == 1 })
            // Alice (over HTTP, so only Bob's socket carries the load) sends him 12 MB.
            let body = String(repeating: "x", count: 4_000)
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { senders in
                for worker in 0..<4 {
                    senders.addTask {
                        for k in stride(from: worker, to: 3_000, by: 4) {
                            let status = try await call(
                                services.messages, .post, "/api/conversations/\(id)/messages", alice, #"{"clientMsgId": "s\#(k)", "body": "\#(body)"}"#
                            ).status
                            #expect(status == 201)
                        }
                    }
                }
                try await senders.waitForAll()
            }
            print("3,000 messages of 4 KB stored for a deaf client in \(ContinuousClock.now - started)")
            let cut = await eventually(timeout: .seconds(30), every: .milliseconds(100)) {
                (try? await redis.command(["ZCARD", bobSockets]).integer) == 0
            }
            #expect(cut, "the deaf socket was never cut off")
            print("a client that never reads was cut off \(ContinuousClock.now - started) after the burst began")
            deaf.close()
            await redis.shutdown()
        }
    }

    @Test("Redis killed: acks keep coming (the send names its instance), readiness stays up; back, the instance registers its users at once")
    func redisOutage() async throws {
        let harness = ServiceHarness()
        try await harness.runAll { services in
            let alice = try await signUp(services.auth, username: TestStack.uniqueName("ro"))
            let bob = try await signUp(services.auth, username: TestStack.uniqueName("ro"))
            let id = try await openConversation(services.messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            let clients = [alice, bob].map { ChatClient(port: services.chatPort, session: $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.run() } }
                #expect(await eventually { clients.allSatisfy(\.isConnected) })
                try await TestStack.kill(.redis)
                do {
                    let sent = ContinuousClock.now
                    try await clients[0].send(#"{"type": "send", "clientMsgId": "r1", "conversationId": "\#(id)", "body": "while redis is down"}"#)
                    #expect(await eventually(timeout: .seconds(5)) { clients[0].frames("ack").count == 1 }, "no ack without Redis")
                    print("ack without Redis after \(ContinuousClock.now - sent)")
                    for port in [services.chatPort, services.notificationsPort] {
                        #expect(await plainStatus("http://127.0.0.1:\(port)/readyz") == 200, "readiness fell with Redis on \(port)")
                    }
                    #expect(try await services.users.execute(uri: "/readyz", method: .get) { $0.status } == .ok)
                } catch {
                    try? await TestStack.start(.redis)
                    throw error
                }
                try await TestStack.start(.redis)
                let back = ContinuousClock.now
                let redis = RedisClient(configuration: TestStack.redis())
                let key = "\(harness.namespace)_socket:presence:\(bob.userId)"
                #expect(
                    await eventually(timeout: .seconds(5)) {
                        let now = String(Int(Date().timeIntervalSince1970 * 1000))
                        return ((try? await redis.command(["ZRANGEBYSCORE", key, now, "+inf"]).array?.count) ?? 0) == 1
                    })
                print("presence registered again \(ContinuousClock.now - back) after Redis came back")
                #expect(ContinuousClock.now - back < .seconds(5))
                await redis.shutdown()
                try await clients[0].send(#"{"type": "send", "clientMsgId": "r2", "conversationId": "\#(id)", "body": "redis is back"}"#)
                #expect(
                    await eventually(timeout: .seconds(5)) {
                        clients[1].frames("message").contains { ($0["message"] as? [String: Any])?["clientMsgId"] as? String == "r2" }
                    })
                group.cancelAll()
            }
        }
    }

    @Test("a retried send is answered to its sender only: the other members see the message once")
    func retriedSendGoesToSenderOnly() async throws {
        let harness = ServiceHarness()
        try await harness.runAll { services in
            let users = try await (0..<3).asyncMap { _ in try await signUp(services.auth, username: TestStack.uniqueName("dp")) }
            let created = try await call(
                services.messages, .post, "/api/conversations", users[0],
                #"{"type": "group", "name": "dups", "memberIds": ["\#(users[1].userId)", "\#(users[2].userId)"]}"#)
            let id = try #require((created.json["conversation"] as? [String: Any])?["id"] as? String)
            let clients = users.map { ChatClient(port: services.chatPort, session: $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.run() } }
                #expect(await eventually { clients.allSatisfy(\.isConnected) })
                let frame = #"{"type": "send", "clientMsgId": "again", "conversationId": "\#(id)", "body": "once"}"#
                try await clients[0].send(frame)
                #expect(await eventually { clients[0].frames("ack").count == 1 })
                for _ in 0..<5 { try await clients[0].send(frame) }
                #expect(await eventually { clients[0].frames("ack").count == 6 })
                let ids = Set(clients[0].frames("ack").compactMap { ($0["message"] as? [String: Any])?["id"] as? String })
                #expect(ids.count == 1, "a retry was stored again")
                try await Task.sleep(for: .milliseconds(500))
                for other in clients.dropFirst() {
                    #expect(other.frames("message").count == 1, "a member got the retried message \(other.frames("message").count) times")
                }
                group.cancelAll()
            }
        }
    }

    @Test("50 senders in one group: every member's view is gap-free and each sender's messages are in send order")
    func busyGroup() async throws {
        let harness = ServiceHarness(configure: { $0.bcryptCost = 4 })
        try await harness.runAll { services in
            let users = try await (0..<50).asyncMap { _ in try await signUp(services.auth, username: TestStack.uniqueName("bg")) }
            let others = users.dropFirst().map { #""\#($0.userId)""# }.joined(separator: ",")
            let created = try await call(
                services.messages, .post, "/api/conversations", users[0], #"{"type": "group", "name": "busy", "memberIds": [\#(others)]}"#)
            let id = try #require((created.json["conversation"] as? [String: Any])?["id"] as? String)
            let clients = users.map { ChatClient(port: services.chatPort, session: $0) }
            let perSender = 10
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients { group.addTask { try await client.run() } }
                #expect(await eventually(timeout: .seconds(20)) { clients.allSatisfy(\.isConnected) })
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    for (index, client) in clients.enumerated() {
                        senders.addTask {
                            for k in 0..<perSender {
                                try await client.send(
                                    #"{"type": "send", "clientMsgId": "u\#(index)-\#(k)", "conversationId": "\#(id)", "body": "\#(index) says \#(k)"}"#)
                            }
                        }
                    }
                    try await senders.waitForAll()
                }
                let total = clients.count * perSender
                #expect(await eventually(timeout: .seconds(60)) { clients.allSatisfy { $0.frames("ack").count == perSender } })
                print("\(total) messages from 50 senders in one group, all acked after \(ContinuousClock.now - started)")
                // Every member: what came live plus catch-up from the first gap is exactly 1...total.
                for (index, client) in clients.enumerated() {
                    let live = Set(client.frames("message").compactMap { ($0["message"] as? [String: Any])?["seq"] as? Int })
                    let acked = Set(client.frames("ack").compactMap { ($0["message"] as? [String: Any])?["seq"] as? Int })
                    var have = live.union(acked)
                    var after = 0
                    while have.contains(after + 1) { after += 1 }
                    let rest = try await call(services.messages, .get, "/api/conversations/\(id)/messages?after=\(after)&limit=1000", users[index])
                    have.formUnion((rest.json["messages"] as? [[String: Any]] ?? []).compactMap { $0["seq"] as? Int })
                    #expect(have == Set(1...total), "member \(index) is missing \(Set(1...total).subtracting(have).sorted().prefix(5))")
                }
                let stored = try await call(services.messages, .get, "/api/conversations/\(id)/messages?after=0&limit=1000", users[0])
                let messages = stored.json["messages"] as? [[String: Any]] ?? []
                #expect(messages.compactMap { $0["seq"] as? Int } == Array(1...total))
                for index in clients.indices {
                    let mine = messages.compactMap { $0["clientMsgId"] as? String }.filter { $0.hasPrefix("u\(index)-") }
                    #expect(mine == (0..<perSender).map { "u\(index)-\($0)" }, "sender \(index) out of order")
                }
                group.cancelAll()
            }
        }
    }

    @Test("SIGTERM closes sockets with 1001 (going away), so clients reconnect elsewhere at once")
    func shutdownSaysGoingAway() async throws {
        let harness = ServiceHarness()
        let base = TestStack.freePorts(1)
        let socket = harness.socketHandlerProcess("bye", port: base)
        try await socket.start()
        defer { socket.stop() }
        let auth = try await harness.authApplication()
        try await auth.test(.router) { authClient in
            let alice = try await signUp(authClient, username: TestStack.uniqueName("gw"))
            let client = ChatClient(port: base, session: alice)
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try? await client.run() }
                #expect(await eventually { client.isConnected })
                socket.stop()
                #expect(await eventually(timeout: .seconds(10)) { client.hasEnded })
                #expect(client.closeCode.withLock { $0 } == 1001)
                group.cancelAll()
            }
        }
        await harness.cleanUp()
    }

    @Test("a service started while Postgres or RabbitMQ is down waits, alive and not ready, and becomes ready when they return; the others stay ready")
    func startWhileDependenciesAreDown() async throws {
        let harness = ServiceHarness()
        let base = TestStack.freePorts(2)
        // Postgres down: messages starts, answers /healthz, is not ready, and never exits.
        try await TestStack.stop(.postgres)
        let messages = harness.messagesProcess(port: base)
        do {
            try await messages.start()
            try await Task.sleep(for: .seconds(2))
            #expect(await plainStatus("http://127.0.0.1:\(base)/healthz") == 200)
            #expect(await plainStatus("http://127.0.0.1:\(base)/readyz") == 503)
            #expect(messages.isRunning)
        } catch {
            try? await TestStack.start(.postgres)
            throw error
        }
        try await TestStack.start(.postgres)
        let postgresBack = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(30)) { await plainStatus("http://127.0.0.1:\(base)/readyz") == 200 })
        print("messages ready \(ContinuousClock.now - postgresBack) after Postgres came back")
        defer { messages.stop() }

        // RabbitMQ down: a new socket-handler waits the same way; messages stays ready meanwhile.
        try await TestStack.stop(.rabbitmq)
        let socket = harness.socketHandlerProcess("late", port: base + 1)
        do {
            try await socket.start()
            try await Task.sleep(for: .seconds(2))
            #expect(await plainStatus("http://127.0.0.1:\(base + 1)/healthz") == 200)
            #expect(await plainStatus("http://127.0.0.1:\(base + 1)/readyz") == 503)
            #expect(await plainStatus("http://127.0.0.1:\(base)/readyz") == 200, "messages left readiness with RabbitMQ")
            #expect(socket.isRunning)
        } catch {
            try? await TestStack.start(.rabbitmq)
            throw error
        }
        try await TestStack.start(.rabbitmq)
        let brokerBack = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(30)) { await plainStatus("http://127.0.0.1:\(base + 1)/readyz") == 200 })
        print("socket-handler ready \(ContinuousClock.now - brokerBack) after RabbitMQ came back")
        socket.stop()
        await harness.cleanUp()
    }
}

extension ServiceHarness {
    /// A messages binary in this harness's namespace and schema, as its own process (it applies its
    /// migrations itself, as in production).
    func messagesProcess(port: Int) -> ServiceProcess {
        let admin = TestStack.database(schema: messagesSchema)
        return ServiceProcess(
            name: "messages", port: port,
            environment: [
                "DATABASE_SCHEMA": messagesSchema.rawValue, "DATABASE_USER": admin.username, "DATABASE_PASSWORD": admin.password,
                "JWT_PUBLIC_KEY": privateKey.publicKey.pemRepresentation, "SERVICE_NAMESPACE": "\(namespace)_messages",
            ])
    }

    /// Opens a conversation through a messages process, retrying while it has not heard of the users.
    func openConversation(port: Int, _ session: Session, _ body: String) async throws -> String {
        var conversationId = ""
        _ = await eventually(timeout: .seconds(10)) {
            let (status, answer) = await httpJSON("POST", "http://127.0.0.1:\(port)/api/conversations", bearer: session.accessToken, body: body)
            conversationId = (answer["conversation"] as? [String: Any])?["id"] as? String ?? ""
            return (status == 201 || status == 200) && !conversationId.isEmpty
        }
        guard !conversationId.isEmpty else { throw HarnessError(message: "could not open a conversation") }
        return conversationId
    }

    /// A conversation's whole history from a messages process.
    func history(port: Int, _ conversationId: String, _ session: Session) async -> [[String: Any]] {
        var stored: [[String: Any]] = []
        var after = 0
        while true {
            let (_, body) = await httpJSON(
                "GET", "http://127.0.0.1:\(port)/api/conversations/\(conversationId)/messages?after=\(after)&limit=1000", bearer: session.accessToken)
            let page = body["messages"] as? [[String: Any]] ?? []
            stored += page
            guard page.count == 1000, let last = page.last?["seq"] as? Int else { return stored }
            after = last
        }
    }
}

/// A sender that resends a message until it is acked, reconnecting when its socket dies.
final class RetryingSender: @unchecked Sendable {
    // Safety: used by one test task at a time (send is not called concurrently).
    private var client: ChatClient
    private let port: Int
    private let session: Session
    private let conversationId: String

    init(port: Int, session: Session, conversationId: String) {
        self.port = port
        self.session = session
        self.conversationId = conversationId
        self.client = ChatClient(port: port, session: session)
    }

    /// Sends until acked (2 minutes at most); the client's reader runs in `group`.
    func send(_ clientMsgId: String, in group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        let frame = #"{"type": "send", "clientMsgId": "\#(clientMsgId)", "conversationId": "\#(conversationId)", "body": "body of \#(clientMsgId)"}"#
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if !client.isConnected || client.hasEnded {
                if client.hasEnded || client.failure.withLock({ $0 }) != nil { client = ChatClient(port: port, session: session) }
                let fresh = client
                group.addTask { try? await fresh.run() }
                _ = await eventually(timeout: .seconds(10)) { fresh.isConnected || fresh.hasEnded }
            }
            try? await client.send(frame)
            if await eventually(
                timeout: .seconds(3), every: .milliseconds(20), { self.client.frames("ack").contains { $0["clientMsgId"] as? String == clientMsgId } })
            {
                return
            }
        }
        throw HarnessError(message: "\(clientMsgId) was never acked")
    }
}

/// A websocket client that upgrades and then never reads a byte, with the smallest receive window
/// the kernel allows: the server's writes to it stall.
final class DeafClient: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    static func connect(port: Int, token: String) async throws -> DeafClient? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var size: Int32 = 1024
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            _ = Glibc.close(fd)
            return nil
        }
        let request =
            "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
        _ = request.withCString { Glibc.send(fd, $0, strlen($0), 0) }
        return DeafClient(descriptor: fd)
    }

    func close() {
        _ = Glibc.close(descriptor)
    }
}

/// The status of a plain GET (0 when nothing answered).
func plainStatus(_ url: String) async -> Int {
    await withCheckedContinuation { continuation in
        URLSession.shared.dataTask(with: URL(string: url)!) { _, response, _ in
            continuation.resume(returning: (response as? HTTPURLResponse)?.statusCode ?? 0)
        }.resume()
    }
}

/// One metric's value in a Prometheus text page (`name` with its labels, as printed), if present.
func metricValue(_ name: String, in page: String) -> Double? {
    page.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
}

/// The body of a plain GET, as text.
func plainGet(_ url: String) async -> String {
    await withCheckedContinuation { continuation in
        URLSession.shared.dataTask(with: URL(string: url)!) { data, _, _ in
            continuation.resume(returning: data.map { String(decoding: $0, as: UTF8.self) } ?? "")
        }.resume()
    }
}
