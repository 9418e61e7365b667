import BlockingExecutor
import CHiredis
import Foundation
import ServiceConfig

/// One hiredis connection, confined to a thread of its own.
///
/// hiredis blocks and is not thread-safe: every method of this actor runs on its `DedicatedThread`.
/// A broken connection is freed and reopened on the next command, so a Redis restart costs the
/// callers at most the commands in flight at that moment. After a failure that waited out a
/// timeout (Redis hangs, or its packets vanish), commands fail at once for `failFastFor` instead of
/// each waiting out another: callers queued on this connection learn so quickly (and fall back).
/// A quick failure (connection refused: Redis is down or restarting) does not, so a restarted
/// Redis is used again at once.
actor RedisConnection {
    private let thread: DedicatedThread
    private let configuration: RedisConfiguration
    private var context: UnsafeMutablePointer<redisContext>?
    private var failedAt: ContinuousClock.Instant?
    private var callStarted = ContinuousClock.now
    static let failFastFor: Duration = .milliseconds(500)
    static let slowFailure: Duration = .milliseconds(250)

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.unownedExecutor }

    init(configuration: RedisConfiguration) {
        self.thread = DedicatedThread()
        self.configuration = configuration
    }

    /// Runs commands as one pipeline: all are written, then all replies read.
    /// An error reply of one command is returned in its place, not thrown.
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [Result<RedisValue, RedisError>] {
        callStarted = .now
        let context = try connected()
        for command in commands {
            let status = withArgv(command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { throw fail("append") }
        }
        var replies: [Result<RedisValue, RedisError>] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw fail("read reply") }
            defer { freeReplyObject(raw) }
            replies.append(Self.value(of: raw.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    /// Closes the connection and ends its thread.
    func shutdown() async {
        disconnect()
        await thread.shutdown()
    }

    private func connected() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context {
            if !Self.peerClosed(context) { return context }
            disconnect()  // the server went away while we were idle: reconnect before sending
        }
        if let failedAt, ContinuousClock.now - failedAt < Self.failFastFor {
            throw RedisError(.connectionFailed, "\(configuration.host):\(configuration.port) failed moments ago; not retrying yet")
        }
        let timeout = swiftchat_redis_timeval_ms(Int64(configuration.connectTimeout.milliseconds))
        guard let fresh = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else {
            throw RedisError(.connectionFailed, "could not allocate a context")
        }
        guard fresh.pointee.err == 0 else {
            let message = Self.errorText(fresh)
            redisFree(fresh)
            noteFailure()
            throw RedisError(.connectionFailed, "connect to \(configuration.host):\(configuration.port): \(message)")
        }
        _ = redisSetTimeout(fresh, swiftchat_redis_timeval_ms(Int64(configuration.commandTimeout.milliseconds)))
        _ = redisEnableKeepAlive(fresh)
        context = fresh
        failedAt = nil
        if let password = configuration.password {
            // A managed Redis with a password (and an ACL user, optionally): authenticate first.
            let auth = configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            guard case .success(.string) = try pipeline([auth]).first else {
                disconnect()
                throw RedisError(.connectionFailed, "AUTH refused by \(configuration.host):\(configuration.port)")
            }
        }
        return fresh
    }

    private func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    private func noteFailure() {
        if ContinuousClock.now - callStarted >= Self.slowFailure { failedAt = .now }
    }

    /// Records the failure, frees the context (hiredis contexts are unusable after an error).
    private func fail(_ operation: String) -> RedisError {
        let message = context.map(Self.errorText) ?? "no connection"
        disconnect()
        noteFailure()
        return RedisError(.connectionLost, "\(operation): \(message)")
    }

    /// True when an idle connection has something to read: for Redis that is EOF or an error,
    /// since it never speaks unasked outside pub/sub.
    private static func peerClosed(_ context: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { buffer in
            String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func value(of reply: UnsafeMutablePointer<redisReply>) -> Result<RedisValue, RedisError> {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS:
            return .success(.string(text(reply)))
        case REDIS_REPLY_INTEGER:
            return .success(.integer(Int(reply.integer)))
        case REDIS_REPLY_NIL:
            return .success(.null)
        case REDIS_REPLY_ERROR:
            return .failure(RedisError(.serverError, text(reply)))
        case REDIS_REPLY_ARRAY:
            var values: [RedisValue] = []
            for index in 0..<reply.elements {
                guard let element = reply.element[index] else {
                    values.append(.null)
                    continue
                }
                switch value(of: element) {
                case .success(let value): values.append(value)
                case .failure(let error): return .failure(error)
                }
            }
            return .success(.array(values))
        default:
            return .failure(RedisError(.unexpectedReply, "reply type \(reply.type)"))
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let pointer = reply.str, reply.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: reply.len), as: UTF8.self)
    }
}

/// Calls `body` with a C argv/argvlen pair for a command (binary-safe: lengths are explicit).
func withArgv<Result>(
    _ arguments: [String],
    _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
) -> Result {
    let buffers = arguments.map { Array($0.utf8CString) }
    var lengths = arguments.map { $0.utf8.count }
    let pointers = buffers.map { buffer -> UnsafeMutablePointer<CChar> in
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: buffer.count)
        pointer.initialize(from: buffer, count: buffer.count)
        return pointer
    }
    defer { pointers.forEach { $0.deallocate() } }
    var argv: [UnsafePointer<CChar>?] = pointers.map { UnsafePointer($0) }
    return argv.withUnsafeMutableBufferPointer { argvBuffer in
        lengths.withUnsafeMutableBufferPointer { lengthBuffer in
            body(Int32(arguments.count), argvBuffer.baseAddress!, UnsafePointer(lengthBuffer.baseAddress!))
        }
    }
}
