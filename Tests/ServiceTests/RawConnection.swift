import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A plain TCP client: writes what it is told, keeps what it receives.
struct RawConnection: Sendable {
    private let channel: any Channel
    private let collector: ByteCollector

    static func open(port: Int) async throws -> RawConnection {
        let collector = ByteCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, collector: collector)
    }

    /// A plain `GET /healthz` request.
    static func plainRequest(port: Int) -> String {
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n"
    }

    /// A websocket upgrade request for `path`, with these extra header lines.
    static func upgradeRequest(port: Int, path: String, headers: [String] = []) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers.map { "\($0)\r\n" }.joined() + "\r\n"
    }

    /// How many connections wait in the kernel's accept queue of the IPv4 listener on `port`
    /// (for a listening socket, /proc/net/tcp's rx_queue is that count); nil without a listener.
    static func acceptQueue(port: Int) -> Int? {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return nil }
        let localPort = ":" + String(format: "%04X", port)
        for row in table.split(separator: "\n").dropFirst() {
            let fields = row.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(localPort), fields[3] == "0A" else { continue }
            return fields[4].split(separator: ":").last.flatMap { Int($0, radix: 16) }
        }
        return nil
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Everything the server sent, as Latin-1 text (enough to see the handshake and frame bytes).
    var received: String { collector.text }
    var isOpen: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }
}

/// Keeps every byte the server sends; answers nothing.
private final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let bytes = Mutex<[UInt8]>([])

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    var text: String { String(decoding: bytes.withLock { $0 }.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self) }
}
