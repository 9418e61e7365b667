import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// Many websocket clients of `/ws/chat`, each with an outbox of frames to send and a callback for
/// what it receives. `body` runs once every socket is open; the sockets close when it returns.
struct SocketFleet {
    let ports: [Int]
    let logger: Logger

    func run<Result: Sendable>(
        count: Int,
        token: @escaping @Sendable (Int) -> String,
        received: @escaping @Sendable (_ socket: Int, _ text: String) -> Void,
        _ body: @Sendable (_ outboxes: [AsyncStream<String>.Continuation]) async throws -> Result
    ) async throws -> Result {
        let counts = ConnectionCounts()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            var outboxes: [AsyncStream<String>.Continuation] = []
            for socket in 0..<count {
                let (stream, continuation) = AsyncStream.makeStream(of: String.self)
                outboxes.append(continuation)
                let port = ports[socket % ports.count]
                let logger = logger
                group.addTask {
                    do {
                        try await WebSocketClient.connect(
                            url: "ws://127.0.0.1:\(port)/ws/chat",
                            configuration: .init(maxFrameSize: 1 << 16, additionalHeaders: [.authorization: "Bearer \(token(socket))"]),
                            logger: logger
                        ) { inbound, outbound, _ in
                            counts.connected.add(1, ordering: .relaxed)
                            try await withThrowingTaskGroup(of: Void.self) { connection in
                                connection.addTask {
                                    for await frame in stream { try await outbound.writeTextMessage(frame) }
                                    try await outbound.close(.normalClosure, reason: nil)
                                }
                                for try await message in inbound.messages(maxSize: 1 << 16) {
                                    if case .text(let text) = message { received(socket, text) }
                                }
                                counts.closed.add(1, ordering: .relaxed)
                                connection.cancelAll()
                            }
                        }
                    } catch {
                        counts.failed.add(1, ordering: .relaxed)
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(120)
            while counts.connected.load(ordering: .relaxed) < count {
                guard ContinuousClock.now < deadline, counts.failed.load(ordering: .relaxed) == 0 else {
                    for outbox in outboxes { outbox.finish() }
                    group.cancelAll()
                    throw BenchError(
                        "only \(counts.connected.load(ordering: .relaxed)) of \(count) sockets connected (\(counts.failed.load(ordering: .relaxed)) failed)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let result = try await body(outboxes)
            let closed = counts.closed.load(ordering: .relaxed)
            if closed > 0 { print("\(closed) of \(count) sockets were closed by the server before the phase ended") }
            for outbox in outboxes { outbox.finish() }
            group.cancelAll()
            return result
        }
    }
}

/// How many sockets of a fleet are open, and how many failed to.
final class ConnectionCounts: Sendable {
    let connected = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let closed = Atomic<Int>(0)
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
