import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ServiceHTTP
import ServiceLifecycle

extension Router where Context == ServiceRequestContext {
    /// A live socket at `path`: refused until the instance is ready (503), from an Origin not on
    /// the list (403), without a valid access token of a live session (401), or past the user's
    /// socket quota (429): every refusal an HTTP answer in the error shape (`admission` lets the
    /// server ask before upgrading). `serve` runs for the life of the socket with the caller's
    /// identity.
    public func addLiveSocket(
        _ path: String,
        verifier: AccessTokenVerifier,
        originPolicy: OriginPolicy,
        ready: InstanceReadiness,
        admission: UpgradeAdmission,
        quota: (@Sendable (Identity) async throws -> Void)? = nil,
        serve: @escaping @Sendable (LiveSocket) async throws -> Void
    ) {
        let check: @Sendable (HTTPFields) async throws -> Identity = { headers in
            guard ready.isReady else { throw APIError.unavailable }
            guard originPolicy.allows(headers) else { throw APIError.originNotAllowed }
            let identity = try await AuthenticationMiddleware<ServiceRequestContext>.authenticate(headers, verifier: verifier)
            try await quota?(identity)
            return identity
        }
        admission.register(path) { headers in _ = try await check(headers) }
        ws(
            RouterPath(path),
            shouldUpgrade: { request, _ in
                _ = try await check(request.headers)
                // Reached without an upgrade only when the checks failed a moment ago and pass now.
                guard request.headers[.upgrade]?.lowercased() == "websocket" else { throw APIError.upgradeRequired }
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                guard let identity = try? await check(context.request.headers) else {
                    try await outbound.close(.policyViolation, reason: "unauthenticated")
                    return
                }
                try await serve(LiveSocket(identity: identity, inbound: inbound, outbound: outbound, channel: context.requestContext.channel))
            })
    }
}

/// One accepted live socket: who it is and its streams.
public struct LiveSocket: Sendable {
    public let identity: Identity
    public let inbound: WebSocketInboundStream
    public let outbound: WebSocketOutboundWriter
    /// The underlying channel, to cut a stuck socket off.
    public let channel: any Channel
}

/// Looks after this instance's sockets: cuts off those whose client stopped reading (a write that
/// has not finished within `deadline`: the client's receive window and the kernel's send buffer
/// are full) at once, freeing what they held; every `revocationSweep`, closes the sockets of
/// sessions that ended, in case their sign-out event never reached this instance (its queue was
/// being re-declared, say); and on graceful shutdown closes every socket with 1001 (going away),
/// so clients reconnect to another instance at once.
public struct LiveSocketKeeper: DrainsBeforeServer {
    let connections: ConnectionRegistry
    let deadline: Duration
    let revocations: (any SessionRevocations)?
    let revocationSweep: Duration
    let logger: Logger

    public init(
        connections: ConnectionRegistry, deadline: Duration = .seconds(10), revocations: (any SessionRevocations)?,
        revocationSweep: Duration = .seconds(10), logger: Logger
    ) {
        self.connections = connections
        self.deadline = deadline
        self.revocations = revocations
        self.revocationSweep = revocationSweep
        self.logger = logger
    }

    public func run() async throws {
        var nextSweep = ContinuousClock.now + revocationSweep
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            let cut = connections.cutOffStuck(longerThan: deadline)
            if cut > 0 { logger.info("cut off sockets whose clients stopped reading", metadata: ["count": "\(cut)"]) }
            if let revocations, ContinuousClock.now >= nextSweep {
                nextSweep = .now + revocationSweep
                await closeEndedSessions(revocations)
            }
        }
        // Going away, and wait (a little) for the close frames to leave before the server stops.
        connections.closeAllGoingAway()
        let deadline = ContinuousClock.now + .seconds(3)
        while !connections.all.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

extension LiveSocketKeeper {
    private func closeEndedSessions(_ revocations: any SessionRevocations) async {
        let open = connections.all
        guard !open.isEmpty else { return }
        var seen = Set<String>()
        let sessions = open.compactMap { seen.insert($0.sessionId).inserted ? ($0.sessionId, $0.userId) : nil }
        let ended = await revocations.ended(among: sessions)
        guard !ended.isEmpty else { return }
        for connection in open where ended.contains(connection.sessionId) { connection.close(reason: "session ended") }
        logger.info("closed the sockets of sessions that ended", metadata: ["sessions": "\(ended.count)"])
    }
}

extension LiveConnection {
    /// The life of one socket: the queue drains into `outbound` while each inbound text message
    /// goes to `onText`, at most `framesPerSecond` (bursts of `burst`; past that the client gets
    /// a `rate_limited` error frame). A message over `maxMessageBytes`, fragmented or not, ends the
    /// socket. Returns once the client is gone, or the connection was closed or fell behind.
    ///
    /// Returns the error that ended the reading (an oversize message, a protocol error), if any:
    /// rethrown by the socket's handler after its clean-up, the library closes with its code
    /// (1009 for an oversize message) instead of a normal closure.
    public func serve(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maxMessageBytes: Int, framesPerSecond: Double, burst: Double,
        logger: Logger, onText: (String) async -> Void
    ) async -> (any Error)? {
        await withTaskGroup(of: Void.self) { group -> (any Error)? in
            group.addTask { await self.pump(into: outbound, logger: logger) }
            var bucket = TokenBucket(rate: framesPerSecond, burst: burst)
            var ended: (any Error)?
            do {
                for try await message in inbound.messages(maxSize: maxMessageBytes) {
                    if isOverflowed { break }
                    guard bucket.take() else {
                        send(LiveFrame.error("rate_limited", "Too many frames; slow down.", retryAfterMs: bucket.millisecondsToNext))
                        continue
                    }
                    guard case .text(let text) = message else {
                        send(LiveFrame.error("unsupported_frame", "Send JSON text frames."))
                        continue
                    }
                    await onText(text)
                }
            } catch {
                logger.debug("websocket read ended", metadata: ["error": "\(error)"])
                ended = error
            }
            finish()
            await group.waitForAll()
            return ended
        }
    }

    /// Drains the queue into the socket; closes it when asked or when the reader fell behind. Each
    /// write is marked, so a write the client never lets finish is noticed (`LiveSocketKeeper`).
    private func pump(into outbound: WebSocketOutboundWriter, logger: Logger) async {
        do {
            for await item in self.outbound {
                switch item {
                case .text(let text):
                    writing(true)
                    try await outbound.writeTextMessage(text)
                    writing(false)
                case .close(let code, let reason):
                    try await outbound.close(code, reason: reason)
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
