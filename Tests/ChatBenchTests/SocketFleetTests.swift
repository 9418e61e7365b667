import Crypto
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import Synchronization
import Testing

@testable import ChatBench

/// The load generator's sockets (`make bench`): what a server writes right after its 101 reaches
/// the socket's handler, as it would in a browser.
@Suite("Load generator sockets")
struct SocketFleetTests {
    @Test("frames in the same read as the server's 101 are read: a text passed on, a ping answered")
    func framesWithTheUpgradeResponse() throws {
        let channel = EmbeddedChannel()
        let received = Mutex<[String]>([])
        let handler = FleetSocketHandler(
            socket: 7, received: { socket, text in received.withLock { $0.append("\(socket): \(text)") } }, counts: ConnectionCounts())
        let upgraded = try SocketFleet.configure(channel, host: "127.0.0.1:1", token: "token", handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        // The server answers the upgrade request, and its first frames (a text, then a ping) come
        // in the same read as the 101.
        let request = try outbound(of: channel)
        let key = try #require(
            request.split(separator: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }?
                .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces))
        // RFC 6455's accept value: the key and the protocol's GUID, hashed.
        let accept = Data(Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
        var reply = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        reply.writeString("Sec-WebSocket-Accept: \(accept)\r\n\r\n")
        let text = #"{"type":"hello"}"#
        reply.writeBytes([0x81, UInt8(text.utf8.count)] + Array(text.utf8))  // a text frame, unmasked as a server's are
        reply.writeBytes([0x89, 0x00])  // an empty ping
        try channel.writeInbound(reply)
        channel.embeddedEventLoop.run()

        #expect(try upgraded.wait() != nil)
        #expect(received.withLock { $0 } == [#"7: {"type":"hello"}"#])
        // The pong (fin, opcode 0xA), masked as a client's frames are, with no payload.
        let pong = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(pong.readableBytesView.prefix(2)) == [0x8A, 0x80])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("scheduled frames go out open loop: each once, not before it is due, in order on its socket")
    func scheduledFrames() async throws {
        // Four channels on two event loops (pipes, so nothing listens); each records the frames
        // written to it and when, instead of writing them.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let written = WrittenFrames()
        var channels: [any Channel] = []
        for socket in 0..<4 {
            var ends: [CInt] = [0, 0]
            try #require(pipe(&ends) == 0)
            let channel = try await NIOPipeBootstrap(group: group.next())
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FrameRecorder(socket: socket, written: written))
                    }
                }
                .takingOwnershipOfDescriptors(input: ends[0], output: ends[1]).get()
            channels.append(channel)
        }
        let sockets = FleetSockets(channels)
        let rate = 2_000.0
        let frames = (0..<40).map { k in (socket: k % 4, text: "frame \(k)") }
        let schedule = sockets.schedule(frames, rate: rate)
        let start = ContinuousClock.now + .milliseconds(5)
        try await sockets.send(schedule, from: start)

        // Every frame was written by the time `send` returned, once, and none before it was due;
        // each socket was flushed after its last frame.
        let events = written.records.withLock { $0 }
        let records = events.filter { $0.text != FrameRecorder.flushed }
        for socket in 0..<4 {
            #expect(events.last { $0.socket == socket }?.text == FrameRecorder.flushed, "socket \(socket) was not flushed")
        }
        #expect(records.map(\.text).sorted() == frames.map(\.text).sorted())
        for record in records {
            let k = try #require(Int(record.text.dropFirst("frame ".count)))
            #expect(record.socket == k % 4)
            #expect(record.at >= start + .seconds(Double(k) / rate), "frame \(k) went out before it was due")
        }
        for socket in 0..<4 {
            let order = records.filter { $0.socket == socket }.map(\.text)
            #expect(order == frames.filter { $0.socket == socket }.map(\.text))
        }
        for channel in channels { try await channel.close() }
        try await group.shutdownGracefully()
    }

    /// What the channel wrote, as text.
    private func outbound(of channel: EmbeddedChannel) throws -> String {
        var written = ByteBuffer()
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(var buffer) = part else { continue }
            written.writeBuffer(&buffer)
        }
        return String(buffer: written)
    }
}

/// The frames written to the test's channels: which socket, their text, when.
private final class WrittenFrames: Sendable {
    let records = Mutex<[(socket: Int, text: String, at: ContinuousClock.Instant)]>([])
}

/// Records the websocket frames written to its channel in `written`, and its flushes (as
/// `flushed`), and drops them.
private final class FrameRecorder: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = WebSocketFrame

    /// What a flush is recorded as.
    static let flushed = "(flushed)"

    let socket: Int
    let written: WrittenFrames

    init(socket: Int, written: WrittenFrames) {
        self.socket = socket
        self.written = written
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let text = String(buffer: unwrapOutboundIn(data).data)
        written.records.withLock { $0.append((socket, text, ContinuousClock.now)) }
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {
        written.records.withLock { $0.append((socket, Self.flushed, ContinuousClock.now)) }
    }
}
