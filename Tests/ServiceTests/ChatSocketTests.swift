import EventBus
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWebSocket
import LiveSockets
import Logging
import NIOWebSocket
import RedisClient
import ServiceHTTP
import ServiceRuntime
import SocketHandlerService
import StackTesting
import Synchronization
import Testing

/// Opens a conversation through messages, retrying while messages has not yet heard of the users
/// (UserEvents arrive over RabbitMQ); returns its id.
func openConversation(_ messages: any TestClientProtocol, as session: Session, _ body: String) async throws -> String {
    var conversationId: String?
    _ = await eventually(timeout: .seconds(10)) {
        let response = try? await messages.execute(
            uri: "/api/conversations", method: .post, headers: session.bearer.merging(jsonHeaders), body: ByteBuffer(string: body)
        ) { $0 }
        conversationId = (response.map { json($0)["conversation"] as? [String: Any] } ?? nil)?["id"] as? String
        return conversationId != nil
    }
    guard let conversationId else { throw HarnessError(message: "could not open a conversation: \(body)") }
    return conversationId
}

/// A real websocket client that records every text frame it receives.
final class ChatClient: Sendable {
    private let received = Mutex<[String]>([])
    private let writer = Mutex<WebSocketOutboundWriter?>(nil)
    let url: String
    let headers: HTTPFields
    let maxFrameSize: Int

    /// `maxFrameSize` is the client's own: larger text messages are sent fragmented.
    init(port: Int, session: Session, path: String = "/ws/chat", maxFrameSize: Int = 1 << 20) {
        url = "ws://127.0.0.1:\(port)\(path)"
        headers = session.bearer
        self.maxFrameSize = maxFrameSize
    }

    let failure = Mutex<String?>(nil)

    /// Connects (retrying for a few seconds while the instance is still starting) and reads.
    func run() async throws {
        defer { ended.store(true, ordering: .relaxed) }
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                try await connect()
                return
            } catch {
                failure.withLock { $0 = String(reflecting: error) }
                if isConnected || ContinuousClock.now > deadline { throw error }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func connect() async throws {
        let close = try await WebSocketClient.connect(
            url: url, configuration: .init(maxFrameSize: maxFrameSize, additionalHeaders: headers), logger: TestStack.logger
        ) { inbound, outbound, _ in
            self.writer.withLock { $0 = outbound }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case .text(let text) = message { self.received.withLock { $0.append(text) } }
            }
        }
        closeCode.withLock { $0 = close.map { Int(UInt16(webSocketErrorCode: $0.closeCode)) } }
    }

    /// The code of the close frame the server sent, once the socket closed.
    let closeCode = Mutex<Int?>(nil)

    var isConnected: Bool { writer.withLock { $0 != nil } }

    /// Set when the server closed the socket (or it failed).
    private let ended = Atomic<Bool>(false)
    var hasEnded: Bool { ended.load(ordering: .relaxed) }

    func send(_ text: String) async throws {
        guard let writer = writer.withLock({ $0 }) else { throw HarnessError(message: "not connected") }
        try await writer.writeTextMessage(text)
    }

    func close() async {
        try? await writer.withLock({ $0 })?.close(.normalClosure, reason: nil)
    }

    /// Received frames as JSON objects, optionally of one type.
    func frames(_ type: String? = nil) -> [[String: Any]] {
        received.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { type == nil || $0["type"] as? String == type }
    }
}

extension ServiceHarness {
    /// A socket-handler instance in this harness's namespace.
    func socketApplication(
        instance: String, limits: ChatSocketLimits = ChatSocketLimits(), allowTestClientOrigin: Bool = true,
        pingPeriod: Duration = .seconds(20)
    ) async throws -> some ApplicationProtocol {
        let dependencies = ServiceDependencies(
            name: "socket-handler", database: nil, redis: TestStack.redis(), amqp: TestStack.amqp(),
            http: http(allowTestClientOrigin: allowTestClientOrigin), tokenVerifier: try await verifier(), namespace: "\(namespace)_socket",
            logger: logger
        )
        var configuration = SocketHandlerService.Configuration(instanceId: "\(namespace)-\(instance)")
        configuration.limits = limits
        configuration.limits.pingPeriod = pingPeriod
        let router = makeServiceRouter(configuration: dependencies.http, readiness: dependencies.readiness, liveness: dependencies.livenessChecks)
        let work = SocketHandlerService.build(dependencies: dependencies, configuration: configuration, router: router)
        return makeServiceApplication(
            name: dependencies.name, configuration: dependencies.http, router: router, services: dependencies.coreServices + work,
            admission: dependencies.socketAdmission, logger: logger
        )
    }
}

/// Serialized: every harness runs its own messages service, and all of them are bound to the same
/// `message.sent` routing key, so two chat tests at once would refuse each other's sends.
@Suite("socket-handler: live chat over real websockets across two instances", .serialized)
struct ChatSocketTests {
    @Test("1:1 across two instances: ack after storage, message to the other side, idempotent resend, bad frames answered, non-members refused")
    func chatAcrossInstances() async throws {
        let harness = ServiceHarness()
        let one = try await harness.socketApplication(instance: "one")
        let two = try await harness.socketApplication(instance: "two")
        try await harness.runChat { auth, messages in
            let alice = try await signUp(auth, username: TestStack.uniqueName("wa"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("wb"))
            let mallory = try await signUp(auth, username: TestStack.uniqueName("wm"))
            let id = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)

            try await one.test(.live) { first in
                try await two.test(.live) { second in
                    // No token, no socket.
                    await #expect(throws: (any Error).self) {
                        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(first.port!)/ws/chat", logger: TestStack.logger) { _, _, _ in }
                    }
                    let aliceClient = ChatClient(port: first.port!, session: alice)
                    let bobClient = ChatClient(port: second.port!, session: bob)
                    let malloryClient = ChatClient(port: second.port!, session: mallory)
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for client in [aliceClient, bobClient, malloryClient] { group.addTask { try await client.run() } }
                        #expect(
                            await eventually { aliceClient.isConnected && bobClient.isConnected && malloryClient.isConnected },
                            "\([aliceClient, bobClient, malloryClient].map { $0.failure.withLock { $0 } ?? "ok" })")

                        try await aliceClient.send(#"{"type": "send", "clientMsgId": "a-1", "conversationId": "\#(id)", "body": "hi bob"}"#)
                        #expect(await eventually(timeout: .seconds(10)) { aliceClient.frames("ack").count == 1 && bobClient.frames("message").count == 1 })
                        let ack = try #require(aliceClient.frames("ack").first)
                        let stored = try #require(ack["message"] as? [String: Any])
                        #expect(ack["clientMsgId"] as? String == "a-1")
                        #expect(stored["seq"] as? Int == 1)
                        #expect(stored["senderId"] as? String == alice.userId)  // the sender is the token's user
                        let delivered = try #require(bobClient.frames("message").first?["message"] as? [String: Any])
                        #expect(delivered["id"] as? String == stored["id"] as? String)
                        #expect(delivered["body"] as? String == "hi bob")

                        // The same clientMsgId again: the same message, acked again, stored once.
                        try await aliceClient.send(#"{"type": "send", "clientMsgId": "a-1", "conversationId": "\#(id)", "body": "hi bob"}"#)
                        #expect(await eventually(timeout: .seconds(10)) { aliceClient.frames("ack").count == 2 })
                        #expect((aliceClient.frames("ack").last?["message"] as? [String: Any])?["id"] as? String == stored["id"] as? String)

                        // The same clientMsgId on two of Alice's connections at once: one message, an ack on each.
                        let aliceOther = ChatClient(port: second.port!, session: alice)
                        group.addTask { try await aliceOther.run() }
                        #expect(await eventually { aliceOther.isConnected })
                        let twice = #"{"type": "send", "clientMsgId": "a-2", "conversationId": "\#(id)", "body": "sent twice"}"#
                        async let viaFirst: Void = aliceClient.send(twice)
                        async let viaSecond: Void = aliceOther.send(twice)
                        _ = try await (viaFirst, viaSecond)
                        func ackId(_ client: ChatClient) -> String? {
                            (client.frames("ack").first { $0["clientMsgId"] as? String == "a-2" }?["message"] as? [String: Any])?["id"] as? String
                        }
                        #expect(await eventually(timeout: .seconds(10)) { ackId(aliceClient) != nil && ackId(aliceOther) != nil })
                        #expect(ackId(aliceClient) == ackId(aliceOther))
                        await aliceOther.close()

                        // Bad frames get an error frame and the socket stays open.
                        for bad in [
                            "not json", #"{"type": "dance"}"#, #"{"type": "send", "clientMsgId": 5}"#,
                            #"{"type": "send", "clientMsgId": "b", "conversationId": "\#(id)", "body": ""}"#,
                        ] {
                            try await bobClient.send(bad)
                        }
                        #expect(await eventually { bobClient.frames("error").count == 4 })
                        #expect(Set(bobClient.frames("error").compactMap { $0["code"] as? String }) == ["invalid_frame", "unknown_type"])
                        try await bobClient.send(#"{"type": "send", "clientMsgId": "b-1", "conversationId": "\#(id)", "body": "hey alice"}"#)
                        #expect(
                            await eventually(timeout: .seconds(10)) {
                                bobClient.frames("ack").count == 1
                                    && aliceClient.frames("message").contains { ($0["message"] as? [String: Any])?["clientMsgId"] as? String == "b-1" }
                            })

                        // A non-member's send is not stored and reaches no one.
                        try await malloryClient.send(#"{"type": "send", "clientMsgId": "m-1", "conversationId": "\#(id)", "body": "let me in"}"#)
                        try await Task.sleep(for: .milliseconds(500))
                        #expect(malloryClient.frames("ack").isEmpty)
                        #expect(!aliceClient.frames("message").contains { ($0["message"] as? [String: Any])?["clientMsgId"] as? String == "m-1" })
                        let history = try await messages.execute(uri: "/api/conversations/\(id)/messages", method: .get, headers: alice.bearer) {
                            json($0)["messages"] as? [[String: Any]] ?? []
                        }
                        #expect(history.compactMap { $0["seq"] as? Int } == [1, 2, 3])
                        #expect(history.filter { $0["clientMsgId"] as? String == "a-2" }.count == 1)

                        for client in [aliceClient, bobClient, malloryClient] { await client.close() }
                        group.cancelAll()
                    }
                }
            }
        }
        let queues = ["\(harness.namespace)_socket.message-events"]
        try? await EventBusAdmin.deleteQueues(queues + queues.map { "\($0).dead" }, configuration: TestStack.amqp())
    }

    @Test(
        "groups: conversation frames, read receipts to the sender, typing to the others (not stored), outsiders refused, removed members hear nothing more, signout closes the socket"
    )
    func groupChat() async throws {
        let harness = ServiceHarness()
        let one = try await harness.socketApplication(instance: "one")
        let two = try await harness.socketApplication(instance: "two")
        try await harness.runChat { auth, messages in
            let alice = try await signUp(auth, username: TestStack.uniqueName("ga"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("gb"))
            let carol = try await signUp(auth, username: TestStack.uniqueName("gc"))
            let mallory = try await signUp(auth, username: TestStack.uniqueName("gm"))
            try await one.test(.live) { first in
                try await two.test(.live) { second in
                    let clients = [
                        ChatClient(port: first.port!, session: alice), ChatClient(port: second.port!, session: bob),
                        ChatClient(port: first.port!, session: carol), ChatClient(port: second.port!, session: mallory),
                    ]
                    let (aliceClient, bobClient, carolClient, malloryClient) = (clients[0], clients[1], clients[2], clients[3])
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for client in clients { group.addTask { try? await client.run() } }
                        #expect(await eventually { clients.allSatisfy(\.isConnected) })

                        let id = try await openConversation(
                            messages, as: alice, #"{"type": "group", "name": "Trio", "memberIds": ["\#(bob.userId)", "\#(carol.userId)"]}"#
                        )
                        #expect(
                            await eventually(timeout: .seconds(10)) {
                                [aliceClient, bobClient, carolClient].allSatisfy { $0.frames("conversation").contains { $0["event"] as? String == "created" } }
                            })
                        #expect(malloryClient.frames("conversation").isEmpty)

                        try await aliceClient.send(#"{"type": "send", "clientMsgId": "g-1", "conversationId": "\#(id)", "body": "hello group"}"#)
                        #expect(await eventually(timeout: .seconds(10)) { bobClient.frames("message").count == 1 && carolClient.frames("message").count == 1 })

                        // Bob read it: Alice (and Carol) get the receipt; the marker only moves forward.
                        try await bobClient.send(#"{"type": "read", "conversationId": "\#(id)", "seq": 1}"#)
                        #expect(await eventually(timeout: .seconds(10)) { !aliceClient.frames("receipt").isEmpty })
                        let receipt = try #require(aliceClient.frames("receipt").first)
                        #expect(receipt["userId"] as? String == bob.userId && receipt["readSeq"] as? Int == 1 && receipt["deliveredSeq"] as? Int == 1)
                        try await bobClient.send(#"{"type": "read", "conversationId": "\#(id)", "seq": 0}"#)
                        try await bobClient.send(#"{"type": "delivered", "conversationId": "\#(id)", "seq": 99}"#)  // clamped to lastSeq: no change
                        let bobMember = try await messages.execute(uri: "/api/conversations/\(id)", method: .get, headers: bob.bearer) { response in
                            ((json(response)["conversation"] as? [String: Any])?["members"] as? [[String: Any]] ?? []).first {
                                $0["userId"] as? String == bob.userId
                            }
                        }
                        #expect(bobMember?["readSeq"] as? Int == 1)

                        // Typing reaches the others only, and is not stored.
                        try await bobClient.send(#"{"type": "typing", "conversationId": "\#(id)", "typing": true}"#)
                        #expect(await eventually(timeout: .seconds(10)) { aliceClient.frames("typing").count == 1 && carolClient.frames("typing").count == 1 })
                        #expect(bobClient.frames("typing").isEmpty)
                        #expect(aliceClient.frames("typing").first?["userId"] as? String == bob.userId)

                        // Mallory is not a member: typing and sending are refused, and she sees nothing.
                        try await malloryClient.send(#"{"type": "typing", "conversationId": "\#(id)", "typing": true}"#)
                        try await malloryClient.send(#"{"type": "send", "clientMsgId": "m-1", "conversationId": "\#(id)", "body": "hi?"}"#)
                        #expect(
                            await eventually(timeout: .seconds(10)) {
                                malloryClient.frames("error").filter { $0["code"] as? String == "not_found" }.count == 2
                            })
                        #expect(malloryClient.frames("error").contains { $0["clientMsgId"] as? String == "m-1" })
                        #expect(malloryClient.frames("message").isEmpty && malloryClient.frames("typing").isEmpty && malloryClient.frames("receipt").isEmpty)

                        // Carol is removed: she hears of it, then nothing more.
                        #expect(
                            try await messages.execute(uri: "/api/conversations/\(id)/members/\(carol.userId)", method: .delete, headers: alice.bearer) {
                                $0.status
                            } == .noContent)
                        #expect(
                            await eventually(timeout: .seconds(10)) {
                                carolClient.frames("conversation").contains { $0["event"] as? String == "member_removed" }
                            })
                        try await aliceClient.send(#"{"type": "send", "clientMsgId": "g-2", "conversationId": "\#(id)", "body": "carol is gone"}"#)
                        #expect(await eventually(timeout: .seconds(10)) { bobClient.frames("message").count == 2 })
                        try await Task.sleep(for: .milliseconds(300))
                        #expect(carolClient.frames("message").count == 1)

                        let history = try await messages.execute(uri: "/api/conversations/\(id)/messages", method: .get, headers: alice.bearer) {
                            json($0)["messages"] as? [[String: Any]] ?? []
                        }
                        #expect(history.compactMap { $0["body"] as? String } == ["hello group", "carol is gone"])

                        // Bob signs out: his socket (that session's) is closed by the server.
                        try await auth.execute(uri: "/api/auth/signout", method: .post, headers: bob.bearer) { #expect($0.status == .noContent) }
                        #expect(await eventually(timeout: .seconds(10)) { bobClient.hasEnded })
                        #expect(!aliceClient.hasEnded)

                        for client in clients { await client.close() }
                        group.cancelAll()
                    }
                }
            }
        }
        let queues = ["\(harness.namespace)_socket.message-events"]
        try? await EventBusAdmin.deleteQueues(queues + queues.map { "\($0).dead" }, configuration: TestStack.amqp())
    }

    @Test("ordering and catch-up: 1,000 rapid sends on one socket are stored seq 1…1000 in send order; an offline member gets exactly those by after=lastSeq")
    func orderingAndCatchUp() async throws {
        let harness = ServiceHarness()
        var fast = ChatSocketLimits()
        fast.framesPerSecond = 10_000
        fast.burst = 2_000
        fast.outboundBuffer = 4_096
        let instance = try await harness.socketApplication(instance: "one", limits: fast)
        try await harness.runChat { auth, messages in
            let alice = try await signUp(auth, username: TestStack.uniqueName("oa"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("ob"))
            let id = try await openConversation(messages, as: alice, #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
            // Bob was here up to lastSeq 0, then goes offline (no socket) while Alice sends.
            let bobLastSeq = 0
            let total = 1_000
            try await instance.test(.live) { server in
                let aliceClient = ChatClient(port: server.port!, session: alice)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try? await aliceClient.run() }
                    #expect(await eventually { aliceClient.isConnected })
                    for index in 0..<total {
                        try await aliceClient.send(#"{"type": "send", "clientMsgId": "o-\#(index)", "conversationId": "\#(id)", "body": "n\#(index)"}"#)
                    }
                    #expect(
                        await eventually(timeout: .seconds(60), every: .milliseconds(100)) { aliceClient.frames("ack").count == total },
                        "received: \(Dictionary(grouping: aliceClient.frames(), by: { $0["type"] as? String ?? "?" }).mapValues(\.count)), errors: \(Set(aliceClient.frames("error").compactMap { $0["code"] as? String }))"
                    )
                    let acked = aliceClient.frames("ack").compactMap { ($0["message"] as? [String: Any])?["seq"] as? Int }
                    #expect(Set(acked) == Set(1...total))
                    await aliceClient.close()
                    group.cancelAll()
                }
            }
            var caughtUp: [[String: Any]] = []
            var after = bobLastSeq
            while true {
                let page = try await messages.execute(uri: "/api/conversations/\(id)/messages?after=\(after)&limit=200", method: .get, headers: bob.bearer) {
                    json($0)["messages"] as? [[String: Any]] ?? []
                }
                caughtUp += page
                guard let last = page.last?["seq"] as? Int else { break }
                after = last
            }
            #expect(caughtUp.compactMap { $0["seq"] as? Int } == Array(1...total))
            #expect(caughtUp.compactMap { $0["clientMsgId"] as? String } == (0..<total).map { "o-\($0)" })
        }
    }

    @Test("heartbeat: a peer that stops answering pings is dropped within two ping periods plus the close timeout; a live one stays")
    func deadPeerDropped() async throws {
        let harness = ServiceHarness()
        let instance = try await harness.socketApplication(instance: "ping", pingPeriod: .seconds(1))
        try await harness.runChat { auth, _ in
            let alice = try await signUp(auth, username: TestStack.uniqueName("pa"))
            try await instance.test(.live) { server in
                let live = ChatClient(port: server.port!, session: alice)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try? await live.run() }
                    let silent = try #require(
                        try await SilentPeer.upgrade(
                            port: server.port!, path: "/ws/chat", token: alice.accessToken, origin: "http://127.0.0.1:8080"
                        ))
                    #expect(await eventually { live.isConnected })
                    let upgraded = ContinuousClock.now
                    // 1 s period: the unanswered ping is noticed at the next one (2 s), then the
                    // close handshake waits the 5 s close timeout for a reply that never comes.
                    let dropped = await eventually(timeout: .seconds(15), every: .milliseconds(100)) { !silent.isOpen }
                    let elapsed = ContinuousClock.now - upgraded
                    await silent.close()
                    #expect(dropped, "still open after \(elapsed)")
                    #expect(elapsed < .seconds(10))
                    #expect(silent.received.contains("Ping timeout"))  // the close frame's reason
                    // The client that answers pings was pinged just as often and is still here.
                    #expect(!live.hasEnded)
                    try await live.send(#"{"type": "dance"}"#)
                    #expect(await eventually { live.frames("error").last?["code"] as? String == "unknown_type" })
                    await live.close()
                    group.cancelAll()
                }
            }
        }
        let queues = ["\(harness.namespace)_socket.message-events"]
        try? await EventBusAdmin.deleteQueues(queues + queues.map { "\($0).dead" }, configuration: TestStack.amqp())
    }

    @Test("hostile input: floods are rate-limited without dropping the socket; oversize and fragmented oversize messages close it")
    func hostileFrames() async throws {
        let harness = ServiceHarness()
        var tight = ChatSocketLimits()
        tight.framesPerSecond = 5
        tight.burst = 10
        let instance = try await harness.socketApplication(instance: "tight", limits: tight)
        let strict = try await harness.socketApplication(instance: "strict", allowTestClientOrigin: false)
        try await harness.runChat { auth, _ in
            let alice = try await signUp(auth, username: TestStack.uniqueName("ha"))
            // A valid token from an Origin that is not on the list: no socket.
            try await strict.test(.live) { server in
                let foreign = ChatClient(port: server.port!, session: alice)
                await #expect(throws: (any Error).self) { try await foreign.run() }
                #expect(!foreign.isConnected)
            }
            try await instance.test(.live) { server in
                let flooder = ChatClient(port: server.port!, session: alice)
                let bigFrame = ChatClient(port: server.port!, session: alice)
                let fragments = ChatClient(port: server.port!, session: alice, maxFrameSize: 16 * 1024)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in [flooder, bigFrame, fragments] { group.addTask { try? await client.run() } }
                    #expect(await eventually { flooder.isConnected && bigFrame.isConnected && fragments.isConnected })

                    for _ in 0..<40 { try await flooder.send(#"{"type": "dance"}"#) }
                    #expect(await eventually { flooder.frames("error").count >= 40 })
                    let codes = flooder.frames("error").compactMap { $0["code"] as? String }
                    #expect(codes.filter { $0 == "rate_limited" }.count >= 25)
                    #expect(codes.filter { $0 == "unknown_type" }.count <= 15)
                    try await Task.sleep(for: .seconds(1))
                    try await flooder.send(#"{"type": "dance"}"#)  // tokens again: answered normally
                    #expect(await eventually { flooder.frames("error").last?["code"] as? String == "unknown_type" })
                    #expect(!flooder.hasEnded)

                    let oversize = #"{"type": "send", "body": ""# + String(repeating: "x", count: 80 * 1024) + #""}"#
                    try? await bigFrame.send(oversize)  // one 80 KiB frame
                    try? await fragments.send(oversize)  // five 16 KiB fragments
                    #expect(await eventually(timeout: .seconds(10)) { bigFrame.hasEnded && fragments.hasEnded })
                    #expect(!flooder.hasEnded)

                    await flooder.close()
                    group.cancelAll()
                }
            }
        }
    }
}
