import Logging
import NIOCore
import NIOWebSocket
import ServiceConfig
import ServiceHTTP

/// The whole life of one live socket, in its channel's pipeline: frames in (rate-limited, each text
/// message handed on), the connection's queue out, pings, and the close handshake. Nothing waits:
/// an idle socket is its channel and this state, with no task or timer of its own.
final class LiveSocketHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: a channel handler lives on its channel's event loop; its state is only touched
    // there (the timers run on that loop too).
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: LiveConnection
    private let connections: ConnectionRegistry
    private let settings: LiveSocketSettings
    private let received: @Sendable (String, LiveConnection) -> Void
    private let logger: Logger
    private var bucket: TokenBucket
    /// Whether the connection joined the registry (the channel was open when this was added), and
    /// whether it was its user's first here.
    private var registered = false
    private(set) var first = false
    /// `opened` is still running; a close meanwhile waits for it.
    private var opening = true
    private var closedWhileOpening = false
    private var awaitingPong = false
    /// A close frame went out: the socket reads no more messages, and ends at the client's close
    /// frame or after `closeTimeout` (a close the server starts: 1000, 1001), or once the frame is
    /// written or after `closeWriteTimeout` (one it ends at once: a cut-off, a broken message, an
    /// answer to the client's close).
    private var closing = false
    /// What closes the socket if its close does not finish first: cancelled when the socket
    /// closes, so a closed socket is not held until the timer would have fired.
    private(set) var closeTimer: Scheduled<Void>?
    /// Its place in the pipeline while it is there, for the connection's calls (`writeQueued`,
    /// `ping`, `cutOff(_:)`), which come on the loop.
    private var context: ChannelHandlerContext?

    private init(
        connection: LiveConnection, connections: ConnectionRegistry, settings: LiveSocketSettings, logger: Logger,
        received: @escaping @Sendable (String, LiveConnection) -> Void
    ) {
        self.connection = connection
        self.connections = connections
        self.settings = settings
        self.received = received
        self.logger = logger
        self.bucket = TokenBucket(rate: settings.framesPerSecond, burst: settings.burst)
    }

    /// Puts an upgraded socket's handlers on `channel` (on its loop, the websocket codec already
    /// there) and runs `opened` before the first frame is read.
    static func install(
        on channel: any Channel, identity: Identity, connections: ConnectionRegistry, settings: LiveSocketSettings, logger: Logger,
        opened: @escaping @Sendable (LiveConnection, _ first: Bool) async -> Void, received: @escaping @Sendable (String, LiveConnection) -> Void
    ) -> EventLoopFuture<Void> {
        let connection = LiveConnection(
            userId: identity.userId, sessionId: identity.sessionId, bufferLimit: settings.outboundBuffer, eventLoop: channel.eventLoop)
        let handler = LiveSocketHandler(connection: connection, connections: connections, settings: settings, logger: logger, received: received)
        do {
            // Fragments are joined up to the message limit; a longer message is an error (1009).
            try channel.pipeline.syncOperations.addHandlers(
                NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 256, maxAccumulatedFrameSize: settings.maxMessageBytes),
                handler
            )
        } catch {
            // Upgraded but with nothing to serve it: the socket ends.
            logger.warning("live socket could not be set up after its upgrade", metadata: ["user": "\(identity.userId)", "error": "\(error)"])
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        guard handler.registered else { return channel.eventLoop.makeSucceededVoidFuture() }
        let first = handler.first
        return channel.eventLoop.makeFutureWithTask { await opened(connection, first) }.map { handler.openedDone() }
    }

    /// `opened` finished: a close that came meanwhile is cleaned up now, after it (the quota entry
    /// it wrote is removed, not left behind).
    private func openedDone() {
        opening = false
        if closedWhileOpening { connections.closed(connection) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connection.handlerJoined(self)
        guard context.channel.isActive else { return }
        registered = true
        first = connections.add(connection)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connection.handlerLeft()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeTimer?.cancel()
        connection.ended()
        if registered {
            registered = false
            if opening { closedWhileOpening = true } else { connections.closed(connection) }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard !closing else { return }
            guard frame.length <= settings.maxMessageBytes else {
                end(code: .messageTooLarge, context: context)
                return
            }
            guard bucket.take() else {
                connection.send(LiveFrame.error("rate_limited", "Too many frames; slow down.", retryAfterMs: bucket.millisecondsToNext))
                return
            }
            guard frame.opcode == .text else {
                connection.send(LiveFrame.error("unsupported_frame", "Send JSON text frames."))
                return
            }
            received(String(buffer: frame.unmaskedData), connection)
        case .ping:
            guard !closing else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            if closing {
                context.close(promise: nil)
            } else {
                // The client's close: answered with its code (when one may be sent back), then
                // the socket ends; nothing queued after it goes out.
                var data = frame.unmaskedData
                end(code: data.readWebSocketErrorCode().flatMap(Self.echoable) ?? .normalClosure, context: context)
            }
        default:
            end(code: .protocolError, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge, NIOWebSocketFrameAggregator.Error.tooManyFragments:
            end(code: .messageTooLarge, context: context)
        case is NIOWebSocketFrameAggregator.Error:
            end(code: .protocolError, context: context)
        default:
            // The codec's own errors were answered by its error handler; anything else ends the
            // socket, without a close frame: logged at info so a client that lost its socket this
            // way can be told from one the server closed on purpose.
            logger.info("live socket failed", metadata: ["user": "\(connection.userId)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            // The client read: progress, whatever is still queued.
            connection.blocked(false)
            drain(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed as ChannelEvent:
            // The client closed its side without a close frame (the server allows half-closed
            // connections for HTTP): it is gone, so is the socket.
            logger.info("live socket ended by its client without a close frame", metadata: ["user": "\(connection.userId)"])
            context.close(promise: nil)
        case is ChannelShouldQuiesceEvent:
            // The server is stopping (a socket the keeper's sweep did not see yet).
            startClosing(code: .goingAway, reason: "server shutting down", context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// The connection queued frames (or a close): written now, as far as the socket takes them.
    func writeQueued() {
        if let context { drain(context: context) }
    }

    /// The keeper's sweep asks for a ping.
    func ping() {
        if let context { ping(context: context) }
    }

    /// The connection was cut off.
    func cutOff(_ reason: LiveConnection.CutOff) {
        if let context { cutOff(reason, context: context) }
    }

    /// Writes what the connection queued while the socket takes writes; when it stops, the rest
    /// waits (and the connection counts as blocked) until it takes them again.
    private func drain(context: ChannelHandlerContext) {
        while context.channel.isWritable {
            let items = connection.takeQueued()
            guard !items.isEmpty else {
                connection.blocked(false)
                return
            }
            for item in items {
                switch item {
                case .text(let text):
                    let frame = WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: text))
                    context.write(wrapOutboundOut(frame), promise: nil)
                case .close(let code, let reason):
                    startClosing(code: code, reason: reason, context: context)
                    return
                }
            }
            context.flush()
        }
        connection.blocked(true)
    }

    /// A ping each period (`LiveSocketKeeper` asks for them, one sweep for every socket, so a
    /// socket holds no timer); one still unanswered when the next is due closes the socket.
    private func ping(context: ChannelHandlerContext) {
        guard !closing else { return }
        if awaitingPong {
            startClosing(code: .goingAway, reason: "Ping timeout", context: context)
            return
        }
        awaitingPong = true
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer())), promise: nil)
    }

    /// Sends a close frame and waits `closeTimeout` for the client's before closing the socket.
    private func startClosing(code: WebSocketErrorCode, reason: String, context: ChannelHandlerContext) {
        sendClose(code: code, reason: reason, timeout: settings.closeTimeout, closeOnceWritten: false, context: context)
    }

    /// The connection was cut off (`LiveConnection.cutOff`): a close frame with the reason's code,
    /// unless one went out already or the reason has none, and the socket ends.
    private func cutOff(_ reason: LiveConnection.CutOff, context: ChannelHandlerContext) {
        if case .overflowed = reason {
            // Logged here, where the socket is, so a client that lost its socket this way can be
            // told from one that lost it some other way (the keeper logs the stuck ones).
            logger.info("live socket cut off: its queue overflowed", metadata: ["user": "\(connection.userId)", "limit": "\(settings.outboundBuffer)"])
        }
        guard let code = reason.code, !closing else {
            context.close(promise: nil)
            return
        }
        end(code: code, context: context)
    }

    /// Ends the socket with a close frame (a broken message, a cut-off, an answer to the client's
    /// close): it closes once the frame is written, or after `closeWriteTimeout` without it (closing
    /// at once would drop a frame still waiting to be written, and the client would see its
    /// connection end with no reason).
    private func end(code: WebSocketErrorCode, context: ChannelHandlerContext) {
        sendClose(code: code, reason: nil, timeout: settings.closeWriteTimeout, closeOnceWritten: true, context: context)
    }

    /// The socket's one close frame: it reads no more messages and nothing queued after the frame
    /// goes out. It closes after `timeout` at the latest, and once the frame is written when
    /// `closeOnceWritten`. The timer is set first, since a write that completes or fails at once
    /// may close the socket before the next line runs (`channelInactive` cancels it), and not at
    /// all on a socket already closed.
    private func sendClose(code: WebSocketErrorCode, reason: String?, timeout: Duration, closeOnceWritten: Bool, context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        connection.ended()
        let channel = context.channel
        if channel.isActive { closeTimer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) { channel.close(promise: nil) } }
        let written = write(close: code, reason: reason, context: context)
        if closeOnceWritten { written.whenComplete { _ in channel.close(promise: nil) } }
    }

    /// A client's close code that may be sent back (1005, 1006 and 1015 only describe a close,
    /// and codes outside the ranges in use are invalid).
    private static func echoable(_ code: WebSocketErrorCode) -> WebSocketErrorCode? {
        let value = UInt16(webSocketErrorCode: code)
        return (1000...1003).contains(value) || (1007...1014).contains(value) || (3000...4999).contains(value) ? code : nil
    }

    private func write(close code: WebSocketErrorCode, reason: String?, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var data = context.channel.allocator.buffer(capacity: 2 + (reason?.utf8.count ?? 0))
        data.write(webSocketErrorCode: code)
        if let reason { data.writeString(reason) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: promise)
        return promise.futureResult
    }
}

extension Duration {
    fileprivate var timeAmount: TimeAmount { .milliseconds(Int64(milliseconds)) }
}
