import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import PostgresSupport
import RedisClient
import StackTesting
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Plain HTTP to a service process.
func httpJSON(_ method: String, _ url: String, bearer: String, body: String? = nil) async -> (Int, [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization")
    if let body {
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
    }
    return await withCheckedContinuation { continuation in
        URLSession.shared.dataTask(with: request) { data, response, _ in
            let object = data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
            continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, object))
        }.resume()
    }
}

extension ServiceHarness {
    /// A socket-handler binary in this harness's namespace, as its own process (to SIGKILL), with
    /// presence entries that lapse 3 s after a crash (heartbeat 1 s).
    func socketHandlerProcess(_ name: String, port: Int, environment extra: [String: String] = [:]) -> ServiceProcess {
        ServiceProcess(
            name: "socket-handler", port: port,
            environment: [
                "INSTANCE_ID": "\(namespace)-\(name)", "SERVICE_NAMESPACE": "\(namespace)_socket",
                "JWT_PUBLIC_KEY": privateKey.publicKey.pemRepresentation, "ALLOWED_ORIGINS": "http://127.0.0.1:8080,ws://127.0.0.1",
                "PRESENCE_TTL_SECONDS": "3", "PRESENCE_HEARTBEAT_SECONDS": "1",
            ].merging(extra) { _, new in new })
    }
}

@Suite("faults: acknowledged messages survive kill -9 of messages, RabbitMQ and a socket-handler instance", .serialized)
struct ChatFaultTests {
    @Test("a burst with retrying clients while messages, RabbitMQ and bob's instance are SIGKILLed: every acked message stored once, bob has them all")
    func burstSurvivesCrashes() async throws {
        let harness = ServiceHarness()
        let base = TestStack.freePorts(3)
        let messages = harness.messagesProcess(port: base)
        let sockets = ["s1", "s2"].enumerated().map { index, name in harness.socketHandlerProcess(name, port: base + 1 + index) }
        try await messages.start()
        for socket in sockets { try await socket.start() }
        defer {
            messages.stop()
            for socket in sockets { socket.stop() }
        }

        let auth = try await harness.authApplication()
        try await auth.test(.router) { authClient in
            let alice = try await signUp(authClient, username: TestStack.uniqueName("fa"))
            let bob = try await signUp(authClient, username: TestStack.uniqueName("fb"))
            var conversationId = ""
            #expect(
                await eventually(timeout: .seconds(10)) {
                    let (status, body) = await httpJSON(
                        "POST", "http://127.0.0.1:\(base)/api/conversations", bearer: alice.accessToken,
                        body: #"{"type": "direct", "userId": "\#(bob.userId)"}"#)
                    conversationId = (body["conversation"] as? [String: Any])?["id"] as? String ?? ""
                    return (status == 201 || status == 200) && !conversationId.isEmpty
                })
            let id = conversationId
            let total = 200

            // Bob listens on s2 (and moves to s1 when s2 dies); every message frame he sees is kept.
            let bobFrames = BobInbox()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var port = sockets[1].port
                    while !Task.isCancelled {
                        let client = ChatClient(port: port, session: bob)
                        bobFrames.track(client)
                        try? await client.run()
                        port = sockets[0].port  // s2 is gone for good after its crash
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }

                // Alice resends anything unacknowledged, reconnecting when her socket dies.
                var acked: [String: [String: Any]] = [:]
                var alice1 = ChatClient(port: sockets[0].port, session: alice)
                func aliceRunner(_ client: ChatClient) { group.addTask { try? await client.run() } }
                aliceRunner(alice1)
                #expect(await eventually { alice1.isConnected })
                var crashed: Set<String> = []
                var crashedAt = ContinuousClock.now
                for index in 0..<total {
                    let clientMsgId = "f-\(index)"
                    let frame = #"{"type": "send", "clientMsgId": "\#(clientMsgId)", "conversationId": "\#(id)", "body": "burst \#(index)"}"#
                    let deadline = ContinuousClock.now + .seconds(120)
                    while acked[clientMsgId] == nil, ContinuousClock.now < deadline {
                        if alice1.hasEnded {
                            alice1 = ChatClient(port: sockets[0].port, session: alice)
                            aliceRunner(alice1)
                            _ = await eventually(timeout: .seconds(10)) { alice1.isConnected || alice1.hasEnded }
                        }
                        try? await alice1.send(frame)
                        _ = await eventually(timeout: .seconds(3), every: .milliseconds(20)) {
                            alice1.frames("ack").contains { $0["clientMsgId"] as? String == clientMsgId }
                        }
                        if let ack = alice1.frames("ack").first(where: { $0["clientMsgId"] as? String == clientMsgId }) {
                            acked[clientMsgId] = ack["message"] as? [String: Any]
                        }
                    }
                    // The crashes, mid-burst.
                    if acked.count == 50, !crashed.contains("messages") {
                        crashed.insert("messages")
                        messages.kill()
                        try await messages.start()
                    }
                    if acked.count == 100, !crashed.contains("rabbitmq") {
                        crashed.insert("rabbitmq")
                        try await TestStack.kill(.rabbitmq)
                        try await TestStack.start(.rabbitmq)
                    }
                    if acked.count == 150, !crashed.contains("socket") {
                        crashed.insert("socket")
                        sockets[1].kill()
                        crashedAt = ContinuousClock.now
                    }
                }
                #expect(acked.count == total, "acked \(acked.count) of \(total)")

                // Stored exactly once each, gap-free, in send order.
                var stored: [[String: Any]] = []
                var after = 0
                while true {
                    let (_, body) = await httpJSON(
                        "GET", "http://127.0.0.1:\(base)/api/conversations/\(id)/messages?after=\(after)&limit=200", bearer: bob.accessToken)
                    let page = body["messages"] as? [[String: Any]] ?? []
                    stored += page
                    guard let last = page.last?["seq"] as? Int else { break }
                    after = last
                }
                #expect(stored.compactMap { $0["clientMsgId"] as? String } == (0..<total).map { "f-\($0)" })
                #expect(stored.compactMap { $0["seq"] as? Int } == Array(1...total))
                for (clientMsgId, message) in acked {
                    #expect(stored.contains { $0["clientMsgId"] as? String == clientMsgId && $0["id"] as? String == message["id"] as? String })
                }

                // Bob: what he got live, then catch-up after the last seq up to which he has everything.
                let live = bobFrames.seqs()
                var lastSeq = 0
                while live.contains(lastSeq + 1) { lastSeq += 1 }
                let (_, caughtUp) = await httpJSON(
                    "GET", "http://127.0.0.1:\(base)/api/conversations/\(id)/messages?after=\(lastSeq)&limit=200", bearer: bob.accessToken)
                let recovered = Set((caughtUp["messages"] as? [[String: Any]] ?? []).compactMap { $0["seq"] as? Int })
                #expect(live.union(recovered).isSuperset(of: Set(1...total)))

                // The crashed instance's presence entries lapse by themselves (TTL 3 s here).
                let redis = RedisClient(configuration: TestStack.redis())
                let presenceKey = "\(harness.namespace)_socket:presence:\(bob.userId)"
                let crashedInstance = "\(harness.namespace)-s2"
                #expect(
                    await eventually(timeout: .seconds(10)) {
                        let now = String(Int(Date().timeIntervalSince1970 * 1000))
                        let live = (try? await redis.command(["ZRANGEBYSCORE", presenceKey, now, "+inf"]).array?.compactMap(\.string)) ?? [crashedInstance]
                        return !live.contains(crashedInstance)
                    })
                #expect(ContinuousClock.now - crashedAt < .seconds(15))
                await redis.shutdown()

                // SIGTERM: the instance closes its sockets cleanly and exits.
                #expect(!alice1.hasEnded)
                sockets[0].stop()
                #expect(await eventually(timeout: .seconds(10)) { alice1.hasEnded })
                group.cancelAll()
            }
        }
        await harness.cleanUp()
    }
}

/// Everything bob's successive connections received.
final class BobInbox: Sendable {
    private let clients = Mutex<[ChatClient]>([])

    func track(_ client: ChatClient) {
        clients.withLock { $0.append(client) }
    }

    func seqs() -> Set<Int> {
        Set(clients.withLock { $0 }.flatMap { $0.frames("message").compactMap { ($0["message"] as? [String: Any])?["seq"] as? Int } })
    }
}
