import EventContracts
import Foundation
import InMemoryLogging
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import ServiceHTTP
import Testing

@testable import LiveSockets
@testable import SocketHandlerService

/// A live socket's handler on a testing channel: what it writes is read back as frames.
private struct TestSocket {
    let channel: NIOAsyncTestingChannel
    let connection: LiveConnection

    static func settings(bufferLimit: Int = 8) -> LiveSocketSettings {
        LiveSocketSettings(outboundBuffer: bufferLimit, maxMessageBytes: 1024, framesPerSecond: 50, burst: 50)
    }

    static func open(
        _ userId: String, session: String, registry: ConnectionRegistry, bufferLimit: Int = 8, logger: Logger = Logger(label: "test")
    ) async throws -> TestSocket {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).get()
        let settings = settings(bufferLimit: bufferLimit)
        let identity = Identity(userId: userId, sessionId: session, credential: .bearer)
        try await channel.eventLoop.flatSubmit {
            LiveSocketHandler.install(
                on: channel, identity: identity, connections: registry, settings: settings, logger: logger, opened: { _, _ in },
                received: { _, _ in })
        }.get()
        let connection = try #require(registry.connections(of: userId).first { $0.sessionId == session })
        return TestSocket(channel: channel, connection: connection)
    }

    private init(channel: NIOAsyncTestingChannel, connection: LiveConnection) {
        self.channel = channel
        self.connection = connection
    }

    /// Every frame written so far (the loop runs what was handed to it first).
    func written() async throws -> [WebSocketFrame] {
        await channel.testingEventLoop.run()
        var frames: [WebSocketFrame] = []
        while let frame = try await channel.readOutbound(as: WebSocketFrame.self) { frames.append(frame) }
        return frames
    }

    /// Closed, out of the registry, and taking no more frames.
    func isGone(from registry: ConnectionRegistry) -> Bool {
        !channel.isActive && registry.connections(of: connection.userId).isEmpty && !connection.send("late")
    }

    func texts() async throws -> [String] {
        try await written().filter { $0.opcode == .text }.map { String(buffer: $0.data) }
    }
}

/// Swallows what is written, completing nothing: a socket whose client stopped reading.
private final class HeldWrites: ChannelOutboundHandler, @unchecked Sendable {
    // @unchecked: used on its channel's (testing) event loop only.
    typealias OutboundIn = WebSocketFrame
    private(set) var frames: [WebSocketFrame] = []
    private var promises: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        frames.append(unwrapOutboundIn(data))
        if let promise { promises.append(promise) }
    }

    func flush(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        let held = promises
        promises = []
        context.close(mode: mode, promise: promise)
        for promise in held { promise.fail(ChannelError.ioOnClosedChannel) }
    }
}

/// A connection that broke: a write fails and closes the socket at once, inside the write, as
/// NIO's socket channel does when the kernel refuses a write.
private final class BrokenWrites: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = WebSocketFrame

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        context.close(promise: nil)
    }
}

/// A close frame's code and reason.
private func closing(_ frame: WebSocketFrame?) -> (code: WebSocketErrorCode?, reason: String) {
    var data = frame?.data ?? ByteBuffer()
    let code = data.readWebSocketErrorCode()
    return (code, data.readString(length: data.readableBytes) ?? "")
}

@Suite("a live socket's queue: bounded for a slow reader, written by its handler in order")
struct ChatConnectionTests {
    @Test("frames beyond the outbound buffer cut a reader that stopped reading off, dropping what it held")
    func boundedOutboundBuffer() async throws {
        let registry = ConnectionRegistry()
        let logs = InMemoryLogHandler()
        let logger = Logger(label: "recorded") { _ in logs }  // info and above
        let socket = try await TestSocket.open("u", session: "s", registry: registry, bufferLimit: 3, logger: logger)
        socket.channel.isWritable = false
        #expect(socket.connection.send("1") && socket.connection.send("2") && socket.connection.send("3"))
        #expect(try await socket.written().isEmpty)  // the socket takes no writes: they wait
        #expect(!socket.connection.send("4"))
        #expect(socket.connection.isOverflowed)
        // Cut off: only a close frame (1008, policy) went out, and the socket closed.
        let frames = try await socket.written()
        #expect(frames.map(\.opcode) == [.connectionClose])
        #expect(closing(frames.first).code == .policyViolation)
        #expect(socket.isGone(from: registry))
        // Said where it happened: a lost socket can be told from one lost some other way.
        #expect(logs.entries.map(\.message.description) == ["live socket cut off: its queue overflowed"])
    }

    @Test("a stalled socket is cut off once; it keeps its close frame, closing once it is written or after the write timeout if it never is")
    func cutOffWaitsForItsCloseFrame() async throws {
        let registry = ConnectionRegistry()
        let socket = try await TestSocket.open("u", session: "s", registry: registry)
        // A client that stopped reading: nothing written reaches it.
        let held = HeldWrites()
        try await socket.channel.pipeline.addHandler(held, position: .first)
        socket.channel.isWritable = false
        #expect(socket.connection.send("waits"))
        await socket.channel.testingEventLoop.run()
        try await Task.sleep(for: .milliseconds(2))  // the stall is timed on the real clock, in ms
        // The keeper's sweep cuts it off, once: the next sweep finds it cut off already.
        #expect(registry.cutOffStuck(longerThan: .zero) == 1)
        #expect(registry.cutOffStuck(longerThan: .zero) == 0)
        await socket.channel.testingEventLoop.run()
        // The close frame (1013, try again later) waits to be written, and so does the socket.
        #expect(held.frames.map(\.opcode) == [.connectionClose])
        #expect(closing(held.frames.first).code == .unknown(1013))
        #expect(socket.channel.isActive)
        #expect(!socket.connection.send("late"))
        let timeout = TimeAmount(TestSocket.settings().closeWriteTimeout)
        await socket.channel.testingEventLoop.advanceTime(by: timeout - .milliseconds(1))
        #expect(socket.channel.isActive)
        await socket.channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        #expect(socket.isGone(from: registry))
    }

    @Test("a cut-off closes at once when there is no frame to send: the server stopping, or a close frame already on its way")
    func cutOffWithoutAFrame() async throws {
        let registry = ConnectionRegistry()
        // Stopping: the socket did not answer the server's close in time; no second frame.
        let stopping = try await TestSocket.open("u", session: "s1", registry: registry)
        stopping.connection.cutOff(.stopping)
        #expect(try await stopping.written().isEmpty)
        #expect(stopping.isGone(from: registry))
        // Signed out while its client stopped reading: the close frame (1000) waits, then the
        // keeper's cut-off closes the socket at once, without a second frame.
        let signedOut = try await TestSocket.open("u", session: "s2", registry: registry)
        let held = HeldWrites()
        try await signedOut.channel.pipeline.addHandler(held, position: .first)
        signedOut.connection.close(reason: "session ended")
        await signedOut.channel.testingEventLoop.run()
        #expect(held.frames.map(\.opcode) == [.connectionClose])
        #expect(signedOut.channel.isActive)
        signedOut.connection.cutOff(.stuck)
        await signedOut.channel.testingEventLoop.run()
        #expect(held.frames.count == 1)
        #expect(signedOut.isGone(from: registry))
    }

    @Test("a socket that closes before its close timer fires cancels the timer, so it is not held until then")
    func closeTimerCancelled() async throws {
        let registry = ConnectionRegistry()
        // Cut off: its close frame is written at once, and the socket closes then (the write timer
        // would fire 1 s later). Closed by the server: the client answers its close frame (the
        // timer waiting for that answer would fire 5 s later), or the connection broke and the
        // close frame's write closes the socket at once, before the close call returns.
        enum Ending: CaseIterable { case cutOff, answered, broken }
        for ending in Ending.allCases {
            let socket = try await TestSocket.open("u", session: "s", registry: registry)
            let handler = try await socket.channel.pipeline.handler(type: LiveSocketHandler.self).get()
            switch ending {
            case .cutOff:
                socket.connection.cutOff(.overflowed)
            case .answered:
                socket.connection.close(reason: "signed out")
                #expect(try await socket.written().map(\.opcode) == [.connectionClose])
                var data = ByteBuffer()
                data.write(webSocketErrorCode: .normalClosure)
                try await socket.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
            case .broken:
                try await socket.channel.pipeline.addHandler(BrokenWrites(), position: .first)
                socket.connection.close(reason: "signed out")
            }
            await socket.channel.testingEventLoop.run()
            #expect(socket.isGone(from: registry))
            // Past both timeouts: a timer still pending would fire now. (A socket closed before its
            // timer was set needs none.)
            let settings = TestSocket.settings()
            await socket.channel.testingEventLoop.advanceTime(by: TimeAmount(max(settings.closeTimeout, settings.closeWriteTimeout)) + .seconds(1))
            guard let timer = try await socket.channel.eventLoop.submit({ handler.closeTimer }).get() else {
                #expect(ending == .broken, "no close timer was set (\(ending))")
                continue
            }
            do {
                try await timer.futureResult.get()
                Issue.record("the close timer was not cancelled (\(ending))")
            } catch let error as EventLoopError {
                guard case .cancelled = error else { throw error }
            }
        }
    }

    @Test("frames held while the socket takes no writes go out in order once it does")
    func resumesInOrder() async throws {
        let registry = ConnectionRegistry()
        let socket = try await TestSocket.open("u", session: "s", registry: registry)
        socket.channel.isWritable = false
        for text in ["a", "b", "c"] { #expect(socket.connection.send(text)) }
        #expect(try await socket.texts().isEmpty)
        socket.channel.isWritable = true
        socket.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try await socket.texts() == ["a", "b", "c"])
        #expect(socket.connection.send("d"))
        #expect(try await socket.texts() == ["d"])
        // A close goes after what was queued before it; nothing queued after it goes out.
        socket.connection.send("e")
        socket.connection.close(reason: "signed out")
        #expect(!socket.connection.send("f"))
        let frames = try await socket.written()
        #expect(frames.map(\.opcode) == [.text, .connectionClose])
        #expect(closing(frames.last) == (.normalClosure, "signed out"))
    }

    @Test("a client that closes its side without a close frame is gone: the socket closes and leaves the registry")
    func halfClosedIsGone() async throws {
        let registry = ConnectionRegistry()
        let socket = try await TestSocket.open("u", session: "s", registry: registry)
        socket.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        await socket.channel.testingEventLoop.run()
        #expect(socket.isGone(from: registry))
    }

    @Test("a client's close is answered with its code (1000 for one that may not be sent back) and ends the socket")
    func clientClose() async throws {
        for (sent, answered) in [(WebSocketErrorCode.goingAway, WebSocketErrorCode.goingAway), (.unknown(1006), .normalClosure)] {
            let registry = ConnectionRegistry()
            let socket = try await TestSocket.open("u", session: "s", registry: registry)
            var data = ByteBuffer()
            data.write(webSocketErrorCode: sent)
            try await socket.channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
            let frames = try await socket.written()
            #expect(frames.map(\.opcode) == [.connectionClose])
            #expect(closing(frames.first).code == answered)
            #expect(socket.isGone(from: registry))
        }
    }

    @Test("each sweep pings; an answered ping keeps the socket, an unanswered one closes it with 1001 at the next sweep")
    func pings() async throws {
        let registry = ConnectionRegistry()
        let socket = try await TestSocket.open("u", session: "s", registry: registry)
        socket.connection.ping()
        #expect(try await socket.written().map(\.opcode) == [.ping])
        try await socket.channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ByteBuffer()))
        socket.connection.ping()
        #expect(try await socket.written().map(\.opcode) == [.ping])
        socket.connection.ping()  // the last one went unanswered
        let frames = try await socket.written()
        #expect(frames.map(\.opcode) == [.connectionClose])
        #expect(closing(frames.first) == (.goingAway, "Ping timeout"))
    }

    @Test("memory is trimmed once after a burst of sockets settles: not during it, not after a few")
    func trimAfterBursts() {
        var churn = MemoryTrim.Churn()
        // Read once a second: opening, still opening, a quiet second after 1,400 changes (trim),
        // quiet again (no second trim), a few more, quiet but only 100 since the trim.
        let trims = [600, 1_400, 1_400, 1_400, 1_500, 1_500].map { churn.settled(at: $0) }
        #expect(trims == [false, false, true, false, false, false])
    }

    @Test("an ack goes to the connection that sent, once; other devices get the message")
    func ackRouting() async throws {
        let registry = ConnectionRegistry()
        let sender = try await TestSocket.open("alice", session: "s1", registry: registry)
        let otherDevice = try await TestSocket.open("alice", session: "s2", registry: registry)
        #expect(registry.connections(of: "alice").count == 2)
        sender.connection.awaitAck("c-1")
        let delivery = LiveDelivery(recipients: ["alice"], frame: "message", ack: LiveAck(senderId: "alice", clientMsgId: "c-1", frame: "ack"))
        registry.deliver([delivery, delivery])
        #expect(try await sender.texts() == ["ack", "message"])
        #expect(try await otherDevice.texts() == ["message", "message"])
        // Closing one socket leaves the user's other here.
        try await sender.channel.close()
        await sender.channel.testingEventLoop.run()
        #expect(registry.connections(of: "alice").map(\.sessionId) == ["s2"])
    }

    @Test("a batch's frames go out once its sockets are woken, each in order, a close queued meanwhile after them")
    func batchWakes() async throws {
        let registry = ConnectionRegistry()
        let alice = try await TestSocket.open("alice", session: "s1", registry: registry)
        let bob = try await TestSocket.open("bob", session: "s2", registry: registry)
        var wakes = SocketWakes()
        #expect(alice.connection.send("one", waking: &wakes))
        #expect(bob.connection.send("two", waking: &wakes))
        #expect(alice.connection.send("three", waking: &wakes))
        alice.connection.close(reason: "signed out")
        // Queued, not yet written: nothing has woken the sockets' handlers.
        #expect(try await alice.written().isEmpty)
        #expect(try await bob.written().isEmpty)
        wakes.fire()
        let frames = try await alice.written()
        #expect(frames.filter { $0.opcode == .text }.map { String(buffer: $0.data) } == ["one", "three"])
        #expect(frames.last?.opcode == .connectionClose)
        #expect(try await bob.texts() == ["two"])
    }

    @Test("a closed socket's connection lets its handler go, and a ping or cut-off after that is a no-op")
    func handlerLetGo() async throws {
        let registry = ConnectionRegistry()
        let alice = try await TestSocket.open("alice", session: "s1", registry: registry)
        weak var handler = try await alice.channel.pipeline.handler(type: LiveSocketHandler.self).get()
        #expect(handler != nil)
        try await alice.channel.close()
        await alice.channel.testingEventLoop.run()
        // The connection is still held (here, and in the registry's queue of closed sockets).
        #expect(handler == nil)
        alice.connection.ping()
        alice.connection.cutOff(.stuck)
        #expect(try await alice.written().isEmpty)
    }

    @Test("the message, ack and receipt frames written by hand are the encoder's JSON, byte for byte")
    func framesWrittenByHand() throws {
        let reference = EventCoding.makeEncoder()
        reference.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let message = MessageRecord(
            id: "01/x", conversationId: "c-1", seq: 42, senderId: "u\"1", clientMsgId: "m\\1", body: "hi </b> ✨ \"quoted\"",
            sentAt: Date(timeIntervalSince1970: 1_796_167_985.123))
        let frame = OutboundFrame.Message(message: message)
        #expect(LiveFrame.encode(frame) == String(decoding: try reference.encode(frame), as: UTF8.self))
        let ack = OutboundFrame.Ack(clientMsgId: message.clientMsgId, message: message)
        #expect(LiveFrame.encode(ack) == String(decoding: try reference.encode(ack), as: UTF8.self))
        // Every property is written (one added later without its hand-written member fails here).
        let receipt = OutboundFrame.Receipt(conversationId: "c/1", userId: "u\"2", deliveredSeq: 7, readSeq: 5)
        #expect(LiveFrame.encode(receipt) == String(decoding: try reference.encode(receipt), as: UTF8.self))
        for (frame, value) in [(LiveFrame.encode(frame), frame as Any), (LiveFrame.encode(ack), ack as Any), (LiveFrame.encode(receipt), receipt as Any)] {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any])
            #expect(Set(object.keys) == Set(Mirror(reflecting: value).children.compactMap(\.label)))
        }
    }
}
