import BlockingExecutor
import CHiredis
import Foundation
import Logging
import ServiceConfig
import ServiceLifecycle

public struct RedisPubSubMessage: Sendable, Equatable {
    public let channel: String
    public let payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}

/// Subscribes to pub/sub channels as a lifecycle `Service`, resubscribing after reconnects.
///
/// Pub/sub is fire-and-forget: messages published while the subscriber is reconnecting are lost,
/// so it is only used where losing one is harmless (invalidation hints, wake-ups).
public final class RedisSubscriber: Service {
    private let configuration: RedisConfiguration
    private let channels: [String]
    private let logger: Logger
    private let onMessage: @Sendable (RedisPubSubMessage) async -> Void

    public init(
        configuration: RedisConfiguration,
        channels: [String],
        logger: Logger,
        onMessage: @escaping @Sendable (RedisPubSubMessage) async -> Void
    ) {
        self.configuration = configuration
        self.channels = channels
        self.logger = logger
        self.onMessage = onMessage
    }

    public func run() async throws {
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let connection = SubscriberConnection(configuration: configuration)
            do {
                try await connection.subscribe(channels)
                delay = .milliseconds(100)
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    for message in try await connection.read(timeout: .milliseconds(250)) {
                        await onMessage(message)
                    }
                }
            } catch {
                logger.warning("redis subscriber reconnecting", metadata: ["error": "\(error)"])
            }
            await connection.shutdown()
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            try? await LoopTimer.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }
}

/// A hiredis connection in subscribe mode, on a thread of its own.
private actor SubscriberConnection {
    private let thread = DedicatedThread()
    private let configuration: RedisConfiguration
    private var context: UnsafeMutablePointer<redisContext>?

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.unownedExecutor }

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    func subscribe(_ channels: [String]) throws(RedisError) {
        let timeout = swiftchat_redis_timeval_ms(Int64(configuration.connectTimeout.milliseconds))
        guard let fresh = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout), fresh.pointee.err == 0 else {
            throw RedisError(.connectionFailed, "subscriber could not connect to \(configuration.host):\(configuration.port)")
        }
        context = fresh
        _ = redisSetTimeout(fresh, swiftchat_redis_timeval_ms(Int64(configuration.commandTimeout.milliseconds)))
        let status = withArgv(["SUBSCRIBE"] + channels) { argc, argv, lengths in
            redisAppendCommandArgv(fresh, argc, argv, lengths)
        }
        guard status == REDIS_OK else { throw RedisError(.connectionLost, "SUBSCRIBE: \(RedisConnection.errorText(fresh))") }
        // One confirmation per channel; blocking reads are fine here, the timeout bounds them.
        for _ in channels {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(fresh, &raw) == REDIS_OK, let raw else {
                throw RedisError(.connectionLost, "SUBSCRIBE reply: \(RedisConnection.errorText(fresh))")
            }
            freeReplyObject(raw)
        }
    }

    /// Messages that arrive within `timeout`; empty when none did.
    func read(timeout: Duration) throws(RedisError) -> [RedisPubSubMessage] {
        guard let context else { throw RedisError(.connectionLost, "not subscribed") }
        var messages: [RedisPubSubMessage] = []
        var waited = false
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                throw RedisError(.connectionLost, "reader: \(RedisConnection.errorText(context))")
            }
            if let raw {
                defer { freeReplyObject(raw) }
                if case .success(.array(let parts)) = RedisConnection.value(of: raw.assumingMemoryBound(to: redisReply.self)),
                    parts.count == 3, parts[0].string == "message",
                    let channel = parts[1].string, let payload = parts[2].string
                {
                    messages.append(RedisPubSubMessage(channel: channel, payload: payload))
                }
                continue
            }
            // Nothing buffered: wait for the socket once, then return what we have.
            if waited || !messages.isEmpty { return messages }
            waited = true
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(timeout.milliseconds))
            if ready == 0 { return messages }
            guard ready > 0, redisBufferRead(context) == REDIS_OK else {
                throw RedisError(.connectionLost, "subscriber read: \(RedisConnection.errorText(context))")
            }
        }
    }

    func shutdown() async {
        if let context { redisFree(context) }
        context = nil
        await thread.shutdown()
    }
}
