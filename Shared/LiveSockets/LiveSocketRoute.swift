import BlockingExecutor
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOWebSocket
import ServiceConfig
import ServiceHTTP
import ServiceLifecycle

/// How one live-socket path treats its sockets.
public struct LiveSocketSettings: Sendable {
    /// Frames queued for a slow reader before it is cut off.
    public var outboundBuffer: Int
    /// The largest message a client may send (fragments included); a larger one closes the socket
    /// with 1009.
    public var maxMessageBytes: Int
    /// Sustained frames per second, and the burst above it, per connection (past that the client
    /// gets a `rate_limited` error frame, and the socket stays open).
    public var framesPerSecond: Double
    public var burst: Double
    /// How long a close frame the server sent waits for the client's before the socket is closed.
    public var closeTimeout: Duration = .seconds(5)
    /// How long the close frame of a socket the server ends at once (cut off, a broken message, an
    /// answer to the client's close) may wait to be written before the socket closes without it:
    /// a client that stopped reading never takes it.
    public var closeWriteTimeout: Duration = .seconds(1)

    public init(outboundBuffer: Int, maxMessageBytes: Int, framesPerSecond: Double, burst: Double) {
        self.outboundBuffer = outboundBuffer
        self.maxMessageBytes = maxMessageBytes
        self.framesPerSecond = framesPerSecond
        self.burst = burst
    }
}

extension Router where Context == ServiceRequestContext {
    /// A live socket at `path`: refused until the instance is ready (503), from an Origin not on
    /// the list (403), without a valid access token of a live session (401), or past the user's
    /// socket quota (429): every refusal an HTTP answer in the error shape (`admission` asks before
    /// the upgrade). An accepted socket joins `connections` and `quota`; `opened` runs before its
    /// first frame is read, and each text message goes to `received` on the socket's event loop
    /// (queue the work, never wait there). Its clean-up on close is `LiveSocketKeeper`'s.
    public func addLiveSocket(
        _ path: String,
        verifier: AccessTokenVerifier,
        originPolicy: OriginPolicy,
        ready: InstanceReadiness,
        admission: UpgradeAdmission,
        quota: SocketQuota? = nil,
        connections: ConnectionRegistry,
        settings: LiveSocketSettings,
        logger: Logger,
        opened: @escaping @Sendable (LiveConnection, _ first: Bool) async -> Void = { _, _ in },
        received: @escaping @Sendable (String, LiveConnection) -> Void
    ) {
        let check: @Sendable (HTTPFields) async throws -> Identity = { headers in
            guard ready.isReady, !connections.isClosing else { throw APIError.unavailable }
            guard originPolicy.allows(headers) else { throw APIError.originNotAllowed }
            let identity = try await AuthenticationMiddleware<ServiceRequestContext>.authenticate(headers, verifier: verifier)
            try await quota?.check(identity)
            return identity
        }
        admission.register(path) { headers in
            let identity = try await check(headers)
            return { channel in
                LiveSocketHandler.install(
                    on: channel, identity: identity, connections: connections, settings: settings, logger: logger,
                    opened: { connection, first in
                        await opened(connection, first)
                        await quota?.opened(connection)
                    },
                    received: received)
            }
        }
        get(RouterPath(path)) { request, _ -> Response in
            _ = try await check(request.headers)
            // An upgrade the gate admitted but no upgrader saw came on a connection that already
            // carried a request (the upgrader only reads a connection's first): ask for it again
            // on a new connection.
            if request.headers[.upgrade]?.lowercased() == "websocket" {
                return Response(status: .temporaryRedirect, headers: [.location: request.uri.description, .connection: "close"])
            }
            throw APIError.upgradeRequired
        }
    }
}

/// Looks after this instance's sockets: cuts off those whose client stopped reading (a write that
/// has not finished within `deadline`: the client's receive window and the kernel's send buffer
/// are full), freeing what they held within `closeWriteTimeout`; every `revocationSweep`, closes
/// the sockets of sessions that ended, in case their sign-out event never reached this instance
/// (its queue was being re-declared, say); and on graceful shutdown closes every socket with 1001
/// (going away), so clients reconnect to another instance at once.
public struct LiveSocketKeeper: DrainsBeforeServer {
    let connections: ConnectionRegistry
    let deadline: Duration
    let revocations: (any SessionRevocations)?
    let revocationSweep: Duration
    let pingPeriod: Duration
    let quota: SocketQuota?
    let closed: @Sendable (LiveConnection, _ last: Bool) async -> Void
    let logger: Logger

    /// Every socket is pinged each `pingPeriod`, in one sweep; a peer that has not answered the
    /// previous ping when the next is due is sent a close (1001, "Ping timeout") and dropped after
    /// the close timeout. `closed` is the service's clean-up of each socket that closed (`last`:
    /// its user's last here); then the socket leaves `quota`.
    public init(
        connections: ConnectionRegistry, deadline: Duration = .seconds(10), revocations: (any SessionRevocations)?,
        revocationSweep: Duration = .seconds(10), pingPeriod: Duration = .seconds(20), quota: SocketQuota?, logger: Logger,
        closed: @escaping @Sendable (LiveConnection, _ last: Bool) async -> Void = { _, _ in }
    ) {
        self.connections = connections
        self.deadline = deadline
        self.revocations = revocations
        self.revocationSweep = revocationSweep
        self.pingPeriod = pingPeriod
        self.quota = quota
        self.closed = closed
        self.logger = logger
    }

    /// `WS_PING_SECONDS`, 20 by default.
    public static func pingPeriod(_ environment: EnvironmentReader) throws(ConfigurationError) -> Duration {
        try environment.seconds("WS_PING_SECONDS", default: 20, in: 1...3_600)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await cleanUpClosed() }
            await look()
            connections.endClosings()
        }
    }

    /// Runs the clean-up of closed sockets, a few at a time (a storm of closes must not queue
    /// behind one slow Redis answer after another).
    private func cleanUpClosed() async {
        await withTaskGroup(of: Void.self) { cleanUps in
            var running = 0
            for await closing in connections.closings {
                if running == 32 {
                    await cleanUps.next()
                    running -= 1
                }
                cleanUps.addTask {
                    await closed(closing.connection, closing.last)
                    await quota?.closed(closing.connection)
                }
                running += 1
            }
        }
    }

    private func look() async {
        var nextSweep = ContinuousClock.now + revocationSweep
        var nextPing = ContinuousClock.now + pingPeriod
        var churn = MemoryTrim.Churn()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await LoopTimer.sleep(for: .seconds(1)) }
            if churn.settled(at: connections.changes) { await MemoryTrim.run() }
            if ContinuousClock.now >= nextPing {
                nextPing = .now + pingPeriod
                for connection in connections.all { connection.ping() }
            }
            let cut = connections.cutOffStuck(longerThan: deadline)
            if cut > 0 { logger.info("cut off sockets whose clients stopped reading", metadata: ["count": "\(cut)"]) }
            if let revocations, ContinuousClock.now >= nextSweep {
                nextSweep = .now + revocationSweep
                await closeEndedSessions(revocations)
            }
        }
        // Going away: no more upgrades, close frames to every socket, and wait (a little) for
        // the clients' answers; a socket that has not answered by then is closed, so every
        // socket's clean-up runs before this returns.
        connections.closeAllGoingAway()
        await waitForNoSockets(upTo: .seconds(3))
        for connection in connections.all { connection.cutOff(.stopping) }
        await waitForNoSockets(upTo: .seconds(1))
    }

    private func waitForNoSockets(upTo limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while !connections.all.isEmpty, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await LoopTimer.sleep(for: .milliseconds(20))
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
