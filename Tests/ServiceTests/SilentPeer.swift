import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A websocket peer that completes the upgrade and then goes silent: it never answers a ping or a
/// close, like a phone that lost its network. The server must drop it on its own.
struct SilentPeer: Sendable {
    private let channel: any Channel
    private let collector: ByteCollector

    /// Upgrades `path` with a bearer token, retrying while the instance answers anything but 101
    /// (it refuses upgrades until it consumes its queues). Nil if it never upgrades.
    static func upgrade(port: Int, path: String, token: String, origin: String, within timeout: Duration = .seconds(5)) async throws -> SilentPeer? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let collector = ByteCollector()
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in channel.pipeline.addHandler(collector) }
                .connect(host: "127.0.0.1", port: port).get()
            let request =
                "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                + "Authorization: Bearer \(token)\r\nOrigin: \(origin)\r\n\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: request))
            let peer = SilentPeer(channel: channel, collector: collector)
            while ContinuousClock.now < deadline, peer.isOpen, !collector.text.contains("\r\n\r\n") {
                try await Task.sleep(for: .milliseconds(20))
            }
            if collector.text.hasPrefix("HTTP/1.1 101") { return peer }
            await peer.close()
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    var isOpen: Bool { channel.isActive }

    /// Everything the server sent, as Latin-1 text (enough to see the handshake and frame bytes).
    var received: String { collector.text }

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

/// What a server answers to one websocket upgrade request: the status and, for a refusal, the body.
struct UpgradeAnswer: Sendable {
    let status: Int
    let body: String

    var errorCode: String? {
        ((try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["error"] as? [String: Any])?["code"] as? String
    }

    /// Sends one upgrade request with these extra header lines and reads the answer's head (and
    /// body, for a refusal), then closes.
    static func attempt(port: Int, path: String, headers: [String]) async throws -> UpgradeAnswer {
        let collector = ByteCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        let request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers.map { "\($0)\r\n" }.joined() + "\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        let deadline = ContinuousClock.now + .seconds(5)
        func complete(_ text: String) -> Bool {
            guard let end = text.range(of: "\r\n\r\n") else { return false }
            if text.hasPrefix("HTTP/1.1 101") { return true }
            let length =
                text[..<end.lowerBound].split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            return text[end.upperBound...].utf8.count >= length
        }
        while ContinuousClock.now < deadline, !complete(collector.text), channel.isActive {
            try await Task.sleep(for: .milliseconds(10))
        }
        try? await channel.close()
        let text = collector.text
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return UpgradeAnswer(status: status, body: body)
    }
}
