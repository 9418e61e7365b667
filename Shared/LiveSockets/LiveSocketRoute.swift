import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import ServiceHTTP

extension Router where Context == ServiceRequestContext {
    /// A live socket at `path`: refused (no upgrade) until the instance is ready, from an Origin not
    /// on the list, or without a valid access token (cookie or bearer). `serve` runs for the life of
    /// the socket with the caller's identity.
    public func addLiveSocket(
        _ path: RouterPath,
        verifier: AccessTokenVerifier,
        originPolicy: OriginPolicy,
        ready: InstanceReadiness,
        serve: @escaping @Sendable (Identity, WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void
    ) {
        ws(path, shouldUpgrade: { request, _ in
            guard ready.isReady else { throw APIError.unavailable }
            guard originPolicy.allows(request.headers) else { throw APIError.originNotAllowed }
            _ = try await AuthenticationMiddleware<ServiceRequestContext>.authenticate(request.headers, verifier: verifier)
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            guard let identity = try? await AuthenticationMiddleware<ServiceRequestContext>.authenticate(context.request.headers, verifier: verifier) else {
                try await outbound.close(.policyViolation, reason: "unauthenticated")
                return
            }
            try await serve(identity, inbound, outbound)
        })
    }
}

extension LiveConnection {
    /// The life of one socket: the queue drains into `outbound` while each inbound text message
    /// goes to `onText`, at most `framesPerSecond` (bursts of `burst`; past that the client gets
    /// a `rate_limited` error frame). A message over `maxMessageBytes`, fragmented or not, ends the
    /// socket. Returns once the client is gone, or the connection was closed or fell behind.
    public func serve(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maxMessageBytes: Int, framesPerSecond: Double, burst: Double,
        logger: Logger, onText: (String) async -> Void
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pump(into: outbound, logger: logger) }
            var bucket = TokenBucket(rate: framesPerSecond, burst: burst)
            do {
                for try await message in inbound.messages(maxSize: maxMessageBytes) {
                    if isOverflowed { break }
                    guard bucket.take() else {
                        send(LiveFrame.error("rate_limited", "Too many frames; slow down."))
                        continue
                    }
                    guard case .text(let text) = message else {
                        send(LiveFrame.error("unsupported_frame", "Send JSON text frames."))
                        continue
                    }
                    await onText(text)
                }
            } catch {
                // Oversize messages and protocol errors end the stream; the library closes the socket.
                logger.debug("websocket read ended", metadata: ["error": "\(error)"])
            }
            finish()
            await group.waitForAll()
        }
    }

    /// Drains the queue into the socket; closes it when asked or when the reader fell behind.
    private func pump(into outbound: WebSocketOutboundWriter, logger: Logger) async {
        do {
            for await item in self.outbound {
                switch item {
                case .text(let text):
                    try await outbound.writeTextMessage(text)
                case .close(let reason):
                    try await outbound.close(.normalClosure, reason: reason)
                    return
                }
            }
            if isOverflowed {
                try await outbound.close(.policyViolation, reason: "too slow: outbound buffer full")
            }
        } catch {
            logger.debug("websocket write ended", metadata: ["error": "\(error)"])
        }
    }
}

extension WebSocketServerConfiguration {
    /// The live sockets' server settings: a ping every `pingPeriod`; a peer that has not answered
    /// the previous ping when the next is due is sent a close, and dropped after the close timeout.
    public static func liveSockets(pingPeriod: Duration = .seconds(20)) -> WebSocketServerConfiguration {
        WebSocketServerConfiguration(maxFrameSize: 64 * 1024, autoPing: .enabled(timePeriod: pingPeriod), closeTimeout: .seconds(5))
    }
}
