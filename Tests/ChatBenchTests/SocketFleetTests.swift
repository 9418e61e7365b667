import Crypto
import Foundation
import NIOCore
import NIOEmbedded
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
