import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import RedisClient
import StackTesting
import Synchronization
import Testing

@testable import SocketHandlerService

@Suite("presence: presence.changed across socket-handler instances and devices, applied by users", .serialized)
struct PresenceTests {
    @Test(
        "two devices on two instances: online at the first connection, offline only after the last (lastSeenAt set); quick reconnects announce nothing; kill -9 an instance and its users go offline within the bound"
    )
    func presenceAcrossInstances() async throws {
        let harness = ServiceHarness()
        let base = TestStack.freePorts(2)
        // TTL 3 s, heartbeat 1 s, grace 1 s: a crashed instance's users are settled within about
        // TTL + one sweep; a user whose last socket closed is announced offline after the grace.
        let sockets = ["p1", "p2"].enumerated().map { index, name in
            harness.socketHandlerProcess(name, port: base + index, environment: ["PRESENCE_GRACE_SECONDS": "1"])
        }
        for socket in sockets { try await socket.start() }
        defer { for socket in sockets { socket.stop() } }

        // Every presence.changed, in the order published.
        let probeQueue = "\(harness.namespace)_probe.presence"
        let announced = Mutex<[PresenceChanged]>([])
        let probeReady = Atomic<Bool>(false)
        let probe = EventConsumer(
            configuration: TestStack.amqp(), handler: PresenceProbe(queue: probeQueue) { change in announced.withLock { $0.append(change) } },
            logger: TestStack.logger, onConsuming: { probeReady.store(true, ordering: .relaxed) }
        )
        @Sendable func changes(of userId: String) -> [Bool] { announced.withLock { $0 }.filter { $0.userId == userId }.map(\.online) }

        try await harness.run { auth, users in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await probe.run() }
                #expect(await eventually { probeReady.load(ordering: .relaxed) })
                let alice = try await signUp(auth, username: TestStack.uniqueName("pa"))
                let bob = try await signUp(auth, username: TestStack.uniqueName("pb"))
                /// users' view: (online, lastSeenAt), once users knows the user.
                func status(_ session: Session) async -> (online: Bool, lastSeenAt: String?)? {
                    try? await users.execute(uri: "/api/users/\(session.userId)", method: .get, headers: session.bearer) { response in
                        guard let user = json(response)["user"] as? [String: Any], let online = user["online"] as? Bool else { return nil }
                        return (online, user["lastSeenAt"] as? String)
                    }
                }
                #expect(
                    await eventually(timeout: .seconds(20)) {
                        let aliceKnown = await status(alice) != nil
                        let bobKnown = await status(bob) != nil
                        return aliceKnown && bobKnown
                    })
                #expect(await status(alice)?.online == false)

                // The first device: online.
                let first = ChatClient(port: sockets[0].port, session: alice)
                group.addTask { try? await first.run() }
                #expect(await eventually(timeout: .seconds(10)) { await status(alice)?.online == true })
                #expect(changes(of: alice.userId) == [true])

                // A second device on the other instance; the first closes: still online.
                let second = ChatClient(port: sockets[1].port, session: alice)
                group.addTask { try? await second.run() }
                #expect(await eventually { second.isConnected })
                await first.close()
                try await Task.sleep(for: .seconds(3))
                #expect(await status(alice)?.online == true)
                #expect(changes(of: alice.userId) == [true])

                // The last closes: offline after the grace, with lastSeenAt.
                await second.close()
                #expect(await eventually(timeout: .seconds(10)) { await status(alice)?.online == false })
                #expect(await status(alice)?.lastSeenAt != nil)
                #expect(changes(of: alice.userId) == [true, false])
                #expect(announced.withLock { $0 }.last { $0.userId == alice.userId }.map { $0.lastSeenAt <= Date() } == true)

                // Flapping: five quick reconnects across both instances, then one that stays: one online, no offline.
                for index in 0..<5 {
                    let flap = ChatClient(port: sockets[index % 2].port, session: alice)
                    group.addTask { try? await flap.run() }
                    #expect(await eventually { flap.isConnected })
                    await flap.close()
                    #expect(await eventually { flap.hasEnded })
                }
                let staying = ChatClient(port: sockets[0].port, session: alice)
                group.addTask { try? await staying.run() }
                #expect(await eventually { staying.isConnected })
                try await Task.sleep(for: .seconds(3))
                #expect(changes(of: alice.userId) == [true, false, true])
                #expect(await status(alice)?.online == true)

                // Bob is on p2 alone; p2 is SIGKILLed: Bob goes offline within the bound, Alice (on p1) stays.
                let bobClient = ChatClient(port: sockets[1].port, session: bob)
                group.addTask { try? await bobClient.run() }
                #expect(await eventually(timeout: .seconds(10)) { await status(bob)?.online == true })
                let killedAt = ContinuousClock.now
                sockets[1].kill()
                #expect(await eventually(timeout: .seconds(20), every: .milliseconds(100)) { await status(bob)?.online == false })
                let elapsed = ContinuousClock.now - killedAt
                // TTL 3 s + sweep 1 s + heartbeat 1 s, and slack for the event path.
                #expect(elapsed < .seconds(8), "offline after \(elapsed)")
                #expect(changes(of: bob.userId) == [true, false])
                #expect(await status(alice)?.online == true)

                await staying.close()
                group.cancelAll()
            }
        }
        try? await EventBusAdmin.deleteQueues([probeQueue, "\(probeQueue).dead"], configuration: TestStack.amqp())
    }

    @Test(
        "registry transitions in Redis: a crash before the next heartbeat is settled once, dated after the user came online; a reconnect within the grace cancels the offline"
    )
    func registryTransitions() async throws {
        let redis = RedisClient(configuration: TestStack.redis())
        let namespace = TestStack.uniqueName("presence")
        let a = PresenceRegistry(redis: redis, namespace: namespace, instanceId: "a", ttl: .milliseconds(500), grace: .milliseconds(200))
        let b = PresenceRegistry(redis: redis, namespace: namespace, instanceId: "b", ttl: .milliseconds(500), grace: .milliseconds(200))

        // Instance a takes u1 and dies before its first heartbeat; b hands u1 over and settles it once.
        let since = try #require(try await a.connected("u1"))
        #expect(try await b.reapDeadInstances() == 0)  // a is not late yet
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await b.reapDeadInstances() == 1)
        let settled = try await b.settleDue()
        #expect(settled.map(\.userId) == ["u1"])
        #expect(try #require(settled.first).lastSeen > since)
        #expect(try await a.settleDue().isEmpty)

        // u2 leaves b and comes back on a within the grace: still online, nothing to announce.
        #expect(try await b.connected("u2") != nil)
        try await b.disconnected("u2")
        #expect(try await a.connected("u2") == nil)
        try await Task.sleep(for: .milliseconds(300))
        try await a.refresh(["u2"])
        #expect(try await b.settleDue().isEmpty)
        #expect(try await b.instances(of: ["u2"]) == ["u2": ["a"]])

        // The last connection closes: due only after the grace, then settled once.
        try await a.disconnected("u2")
        #expect(try await a.settleDue().isEmpty)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await a.settleDue().map(\.userId) == ["u2"])
        #expect(try await b.settleDue().isEmpty)

        _ = try? await redis.command(["EVAL", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", "0", "\(namespace):*"])
        await redis.shutdown()
    }
}

/// Every `presence.changed` announced, in order.
struct PresenceProbe: EventHandler {
    enum Event: EventSet {
        case changed(PresenceChanged)
        static let cases = [EventCase(PresenceChanged.self, Event.changed)]
    }

    let subscription: Subscription
    let seen: @Sendable (PresenceChanged) -> Void

    init(queue: String, seen: @escaping @Sendable (PresenceChanged) -> Void) {
        self.subscription = Subscription(queue: queue, kind: .shared(), prefetch: 64)
        self.seen = seen
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        for item in batch {
            switch item.event {
            case .changed(let change): seen(change)
            }
        }
        return EventOutcome.done(batch.count)
    }
}
