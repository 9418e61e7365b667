import RedisClient
import StackTesting
import Testing

@Suite("Redis client on the real Redis", .serialized)
struct RedisClientTests {
    let redis = RedisClient(configuration: TestStack.redis())

    @Test("strings with expiry, counters, delete and exists")
    func stringsAndCounters() async throws {
        let key = TestStack.uniqueName("string")
        #expect(try await redis.ping())
        #expect(try await redis.get(key) == nil)
        #expect(try await redis.set(key, "hello 👋 world"))
        #expect(try await redis.get(key) == "hello 👋 world")
        #expect(try await redis.set(key, "other", onlyIfAbsent: true) == false)
        #expect(try await redis.exists(key))
        #expect(try await redis.timeToLive(key) == nil)
        try await redis.set(key, "expiring", expiry: .milliseconds(300))
        let ttl = try #require(try await redis.timeToLive(key))
        #expect(ttl > .zero && ttl <= .milliseconds(300))
        #expect(await eventually(timeout: .seconds(3)) { (try? await redis.get(key)) == nil })

        let counter = TestStack.uniqueName("counter")
        #expect(try await redis.increment(counter) == 1)
        #expect(try await redis.increment(counter, by: 41) == 42)
        #expect(try await redis.expire(counter, after: .seconds(60)))
        #expect(try await redis.delete([counter, key]) == 1)
        #expect(try await redis.exists(counter) == false)
    }

    @Test("sets and hashes")
    func setsAndHashes() async throws {
        let set = TestStack.uniqueName("set")
        #expect(try await redis.setAdd(set, ["a", "b", "c"]) == 3)
        #expect(try await redis.setAdd(set, ["a"]) == 0)
        #expect(try await redis.setContains(set, "b"))
        #expect(try await redis.setRemove(set, ["b"]) == 1)
        #expect(try await redis.setMembers(set) == ["a", "c"])

        let hash = TestStack.uniqueName("hash")
        #expect(try await redis.hashSet(hash, ["instance": "socket-1", "since": "2026-11-22T20:00:00Z"]) == 2)
        #expect(try await redis.hashGet(hash, "instance") == "socket-1")
        #expect(try await redis.hashGetAll(hash) == ["instance": "socket-1", "since": "2026-11-22T20:00:00Z"])
        #expect(try await redis.hashDelete(hash, ["since"]) == 1)
        #expect(try await redis.hashGet(hash, "since") == nil)
        try await redis.delete([set, hash])
    }

    @Test("a pipeline runs in order and returns an error reply in its place")
    func pipeline() async throws {
        let key = TestStack.uniqueName("pipeline")
        let replies = try await redis.pipeline([
            ["SET", key, "1"],
            ["INCR", key],
            ["HGET", key, "field"],  // wrong type: an error reply, not a thrown error
            ["GET", key],
        ])
        #expect(replies.count == 4)
        #expect(try replies[0].get() == .string("OK"))
        #expect(try replies[1].get() == .integer(2))
        #expect(throws: RedisError.self) { try replies[2].get() }
        #expect(try replies[3].get() == .string("2"))
        try await redis.delete([key])
    }

    @Test("publish/subscribe")
    func publishSubscribe() async throws {
        let channel = TestStack.uniqueName("channel")
        let received = Recorder<RedisPubSubMessage>()
        let subscriber = RedisSubscriber(configuration: TestStack.redis(), channels: [channel], logger: TestStack.logger) { received.append($0) }
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await subscriber.run() }
            defer { group.cancelAll() }
            #expect(await eventually { (try? await redis.publish(channel, "wake up")) == 1 })
            #expect(await eventually { received.count >= 1 })
        }
        #expect(received.all.first == RedisPubSubMessage(channel: channel, payload: "wake up"))
    }

    @Test("a Redis that stops answering costs a caller one timeout; the next fail at once, until it answers again")
    func hungRedisFailsFast() async throws {
        var configuration = TestStack.redis()
        configuration.poolSize = 1
        configuration.commandTimeout = .milliseconds(500)
        let client = RedisClient(configuration: configuration)
        #expect(try await client.ping())
        try TestStack.freeze(.redis)
        do {
            defer { try? TestStack.thaw(.redis) }
            let first = ContinuousClock.now
            await #expect(throws: RedisError.self) { try await client.ping() }
            #expect(ContinuousClock.now - first >= .milliseconds(400), "the first call did not wait for its timeout")
            let next = ContinuousClock.now
            await #expect(throws: RedisError.self) { try await client.ping() }
            #expect(ContinuousClock.now - next < .milliseconds(250), "the next call waited out another timeout")
        }
        #expect(await eventually { (try? await client.ping()) == true })
        await client.shutdown()
    }

    @Test("after a Redis restart the client and the subscriber reconnect by themselves")
    func reconnectAfterRestart() async throws {
        let key = TestStack.uniqueName("restart")
        let channel = TestStack.uniqueName("restart_channel")
        try await redis.set(key, "before")
        let received = Recorder<RedisPubSubMessage>()
        let subscriber = RedisSubscriber(configuration: TestStack.redis(), channels: [channel], logger: TestStack.logger) { received.append($0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await subscriber.run() }
            defer { group.cancelAll() }
            #expect(await eventually { (try? await redis.publish(channel, "one")) == 1 })

            try await TestStack.kill(.redis)
            await #expect(throws: RedisError.self) { try await redis.get(key) }
            try await TestStack.start(.redis)

            // Every pooled connection is usable again: the ones that were idle notice their old
            // sockets are dead before they send on them. A round of the pool:
            let poolSize = TestStack.redis().poolSize
            #expect(
                await eventually {
                    for _ in 0..<poolSize where (try? await redis.ping()) != true { return false }
                    return true
                })
            // Redis keeps nothing across restarts here (it is a cache).
            for _ in 0..<8 { #expect(try await redis.get(key) == nil) }
            #expect(try await redis.set(key, "after"))
            #expect(try await redis.get(key) == "after")
            #expect(await eventually(timeout: .seconds(10)) { (try? await redis.publish(channel, "two")) == 1 })
            #expect(await eventually { received.all.contains { $0.payload == "two" } })
        }
        try await redis.delete([key])
    }
}
