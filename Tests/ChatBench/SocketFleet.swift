import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// Many websocket clients of `/ws/chat`, each a NIO channel whose handler passes what it receives
/// to a callback on its event loop: no task or stream per socket, so the load generator, which
/// shares the machine with what it measures, spends little per frame. `body` runs once every
/// socket is open; the sockets close when it returns.
struct SocketFleet {
    let ports: [Int]

    func run<Result: Sendable>(
        count: Int,
        token: @escaping @Sendable (Int) -> String,
        received: @escaping @Sendable (_ socket: Int, _ text: String) -> Void,
        _ body: @Sendable (_ sockets: FleetSockets) async throws -> Result
    ) async throws -> Result {
        let counts = ConnectionCounts()
        let channels = try await withThrowingTaskGroup(of: (Int, any Channel)?.self) { group in
            group.addTask {
                try await Task.sleep(for: .seconds(120))
                throw BenchError("not every socket opened within 120 s")
            }
            for socket in 0..<count {
                group.addTask {
                    let handler = FleetSocketHandler(socket: socket, received: received, counts: counts)
                    return (socket, try await connect(port: ports[socket % ports.count], token: token(socket), handler: handler))
                }
            }
            var channels = [(any Channel)?](repeating: nil, count: count)
            var opened = 0
            do {
                while opened < count, let next = try await group.next() {
                    guard let (socket, channel) = next else { continue }
                    channels[socket] = channel
                    opened += 1
                }
            } catch {
                for channel in channels.compactMap({ $0 }) { channel.close(promise: nil) }
                throw BenchError("only \(opened) of \(count) sockets connected: \(error)")
            }
            group.cancelAll()  // the deadline
            return channels.compactMap { $0 }
        }
        let sockets = FleetSockets(channels)
        let result: Result
        do {
            result = try await body(sockets)
        } catch {
            await sockets.close(counts)
            throw error
        }
        await sockets.close(counts)
        let reasons = counts.reasons.withLock { $0 }
        let closed = reasons.values.reduce(0, +)
        if closed > 0 {
            let why = reasons.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { "\($0.key): \($0.value)" }
                .joined(separator: ", ")
            print("\(closed) of \(count) sockets ended before the phase did (\(why))")
        }
        return result
    }

    /// The largest message the fleet reads, in one frame or joined from fragments.
    static let maxMessageBytes = 1 << 20

    /// One socket: the HTTP upgrade with the token, then `handler` for its frames.
    private func connect(port: Int, token: String, handler: FleetSocketHandler) async throws -> any Channel {
        let upgraded = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, host: "127.0.0.1:\(port)", token: token, handler: handler)
                }
            }
        guard let channel = try await upgraded.get() else { throw BenchError("the websocket upgrade was refused") }
        return channel
    }

    /// A socket's pipeline (on its loop, before it connects): the upgrade request of `/ws/chat`
    /// with the token, then, once the server's 101 has come, `handler` for its frames. The future
    /// gives the channel when upgraded, nil when the server answered otherwise.
    static func configure(
        _ channel: any Channel, host: String, token: String, handler: FleetSocketHandler
    ) throws -> EventLoopFuture<(any Channel)?> {
        // A frame may be large: a 1,024-member group's conversation frame lists every member
        // (about 67 KB). A frame the decoder refuses is the fleet's own error, named as such by its
        // handler (NIO's error handler would close the socket before the handler heard why).
        let upgrader = NIOTypedWebSocketClientUpgrader<(any Channel)?>(
            maxFrameSize: maxMessageBytes, enableAutomaticErrorHandling: false
        ) { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: maxMessageBytes))
                try channel.pipeline.syncOperations.addHandler(handler)
                return channel
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Authorization", value: "Bearer \(token)")
        let upgrade = NIOTypedHTTPClientUpgradeConfiguration<(any Channel)?>(
            upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/ws/chat", headers: headers),
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in channel.close().map { nil } }
        )
        // Frames the server writes at once (a ping due as the socket opens) can come in the same
        // read as its 101: kept for the websocket decoder. NIO's default drops them; a ping lost
        // that way went unanswered, and the server closed the socket a ping period later ("1001
        // Ping timeout").
        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
        configuration.leftOverBytesStrategy = .forwardBytes
        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
    }
}

/// The key that masks every frame the fleet sends. Client frames must be masked, but the key need
/// not be secret here (the server cannot tell), so one serves them all rather than reading the
/// system's random generator per frame.
private let fleetMaskKey: WebSocketMaskingKey = .random()

/// A client's text frame, masked with the fleet's key.
private func textFrame(_ text: String) -> WebSocketFrame {
    WebSocketFrame(fin: true, opcode: .text, maskKey: fleetMaskKey, data: ByteBuffer(string: text))
}

/// The open sockets of a fleet, to send on.
final class FleetSockets: Sendable {
    private let channels: [any Channel]

    init(_ channels: [any Channel]) {
        self.channels = channels
    }

    /// Sends one text frame on `socket`.
    func send(_ text: String, on socket: Int) {
        channels[socket].writeAndFlush(textFrame(text), promise: nil)
    }

    /// `frames` to send open loop, `frames[k]` due `k / rate` seconds after the start, grouped by
    /// the event loop of its socket before the clock starts.
    func schedule(_ frames: [(socket: Int, text: String)], rate: Double) -> FleetSchedule {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, frames: [FleetSchedule.Frame])] = [:]
        for (k, (socket, text)) in frames.enumerated() {
            let channel = channels[socket]
            let frame = FleetSchedule.Frame(offset: .seconds(Double(k) / rate), channel: channel, text: text)
            byLoop[ObjectIdentifier(channel.eventLoop), default: (channel.eventLoop, [])].frames.append(frame)
        }
        return FleetSchedule(byLoop: Array(byLoop.values))
    }

    /// Sends every frame of `schedule` once it is due after `start`, whatever happened before:
    /// each event loop looks at its own sockets' frames every millisecond, on its own timer. A
    /// sender that slept on the Swift clock cost a wake-up of Dispatch's timer thread and of a task
    /// thread every millisecond, and a hop onto every loop, in the process that shares the cores
    /// with what it measures. Returns once every frame has been written.
    func send(_ schedule: FleetSchedule, from start: ContinuousClock.Instant) async throws {
        let loopsDone = schedule.byLoop.map { loop, frames in
            let done = loop.makePromise(of: Void.self)
            let next = NIOLoopBoundBox.makeBoxSendingValue(0, eventLoop: loop)
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1), notifying: done) { task in
                let now = ContinuousClock.now
                var written: [ObjectIdentifier: any Channel] = [:]
                while next.value < frames.count, start + frames[next.value].offset <= now {
                    let frame = frames[next.value]
                    frame.channel.write(textFrame(frame.text), promise: nil)
                    written[ObjectIdentifier(frame.channel)] = frame.channel
                    next.value += 1
                }
                for channel in written.values { channel.flush() }
                if next.value == frames.count { task.cancel() }
            }
            return done.futureResult
        }
        for loopDone in loopsDone { try await loopDone.get() }
    }

    /// A close frame on every socket, then the connections closed.
    fileprivate func close(_ counts: ConnectionCounts) async {
        counts.closing.store(true, ordering: .relaxed)
        let closed = channels.map { channel in
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: fleetMaskKey, data: ByteBuffer(bytes: [0x03, 0xE8])))
                .flatMap { channel.close() }
        }
        guard let loop = channels.first?.eventLoop else { return }
        try? await EventLoopFuture.andAllComplete(closed, on: loop).get()
    }
}

/// Frames to send open loop (`FleetSockets.schedule`), each with its socket's channel and when it
/// is due, grouped by event loop.
struct FleetSchedule: Sendable {
    struct Frame: Sendable {
        let offset: Duration
        let channel: any Channel
        let text: String
    }

    fileprivate let byLoop: [(loop: any EventLoop, frames: [Frame])]
}

/// One socket's frames: text to the fleet's callback, pings answered, the server's close counted.
final class FleetSocketHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: made before its channel exists, then only used on the channel's event loop.
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let socket: Int
    let received: @Sendable (_ socket: Int, _ text: String) -> Void
    let counts: ConnectionCounts
    /// Why the socket is ending, when the server or an error ends it: counted when it closes.
    private var closedBecause: String?

    init(socket: Int, received: @escaping @Sendable (_ socket: Int, _ text: String) -> Void, counts: ConnectionCounts) {
        self.socket = socket
        self.received = received
        self.counts = counts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            received(socket, String(buffer: frame.unmaskedData))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: fleetMaskKey, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            closedBecause = closedBecause ?? ConnectionCounts.reason(ofClose: frame.unmaskedData)
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !counts.closing.load(ordering: .relaxed) { counts.closedBeforeTheEnd(because: closedBecause ?? "the connection ended without a close frame") }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closedBecause = closedBecause ?? "the fleet's own error: \(error)"
        context.close(promise: nil)
    }
}

/// How many sockets of a fleet ended before the phase did, by why (the code and reason of the
/// server's close frame, the fleet's own error, or neither), and whether the fleet is closing them
/// itself.
final class ConnectionCounts: Sendable {
    let closing = Atomic<Bool>(false)
    /// The sockets that ended before the phase did, by why ("code reason" of the server's close
    /// frame, or the fleet's error).
    let reasons = Mutex<[String: Int]>([:])

    func closedBeforeTheEnd(because reason: String) {
        reasons.withLock { $0[reason, default: 0] += 1 }
    }

    /// "code reason" of a close frame's payload (a 2-byte code, then UTF-8 text).
    static func reason(ofClose data: ByteBuffer) -> String {
        var data = data
        let code = data.readWebSocketErrorCode().map { "\(UInt16(webSocketErrorCode: $0))" } ?? "no code"
        let reason = data.readString(length: data.readableBytes) ?? ""
        return reason.isEmpty ? code : "\(code) \(reason)"
    }
}

/// The number in `"clientMsgId":"<prefix><n>"` of a frame, found in its bytes without parsing the
/// JSON (the load generator shares the machine it measures: it must cost little).
func messageNumber(in text: String, prefix: String) -> Int? {
    let needle = Array(#""clientMsgId":""#.utf8) + Array(prefix.utf8)
    return text.utf8.withContiguousStorageIfAvailable { bytes -> Int? in
        guard let start = find(needle, in: bytes) else { return nil }
        var value = 0
        var index = start + needle.count
        guard index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 else { return nil }
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            value = value * 10 + Int(bytes[index] - 48)
            index += 1
        }
        return value
    } ?? nil
}

/// Where `needle` starts in `bytes`, or nil.
private func find(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    guard bytes.count >= needle.count, let first = needle.first else { return nil }
    var index = 0
    while index <= bytes.count - needle.count {
        if bytes[index] == first {
            var matched = 1
            while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
            if matched == needle.count { return index }
        }
        index += 1
    }
    return nil
}

enum FrameKind {
    case message, ack, error, other

    private static let messageTag = Array(#""type":"message""#.utf8)
    private static let ackTag = Array(#""type":"ack""#.utf8)
    private static let errorTag = Array(#""type":"error""#.utf8)

    init(_ text: String) {
        self =
            text.utf8.withContiguousStorageIfAvailable { bytes -> FrameKind in
                if find(Self.messageTag, in: bytes) != nil { return .message }
                if find(Self.ackTag, in: bytes) != nil { return .ack }
                if find(Self.errorTag, in: bytes) != nil { return .error }
                return .other
            } ?? .other
    }
}
