import NIOCore
import Synchronization

/// How many connections a live-socket server lets open at once: accepted, but their first request
/// not yet decided (upgraded to a live socket, or handed to the routes as plain HTTP).
///
/// A burst of upgrades (every client of an instance reconnecting after a deploy) would otherwise
/// run all its handshakes at once, and the memory they use and free together stays with the
/// process, scattered between the sockets that live on: 10,000 upgrades at once left 10–13 KiB of
/// resident memory per idle socket, the same 10,000 with at most 256 opening about 6.5 KiB.
/// Beyond the limit, connections wait in the kernel's accept queue (the listen backlog), which
/// costs the process nothing; a plain request (a health probe, say) waits there too, behind at
/// most `limit` handshakes, each a few milliseconds. A connection that has not decided by
/// `deadline` (it connected and sent nothing) stops counting, so idle connections cannot stop the
/// server from accepting. The limit holds between reads: NIO accepts up to four connections in
/// one, so the count can pass it by three.
public final class OpeningLimit: Sendable {
    public let limit: Int
    let deadline: TimeAmount

    private struct State {
        /// The connections opening, each with the timer that stops counting it at its deadline.
        /// Keyed by channel identity: a channel is removed when it closes, before it can be freed.
        var opening: [ObjectIdentifier: Scheduled<Void>?] = [:]
        /// How to resume accepting, for each server (gate) holding its read.
        var held: [ObjectIdentifier: @Sendable () -> Void] = [:]
    }
    private let state = Mutex(State())

    public init(limit: Int = 256, deadline: TimeAmount = .seconds(5)) {
        self.limit = limit
        self.deadline = deadline
    }

    /// Connections opening now.
    public var opening: Int { state.withLock { $0.opening.count } }

    /// True while a server accepts nothing more, waiting for an opening connection to decide.
    public var isHolding: Bool { state.withLock { !$0.held.isEmpty } }

    /// A connection was accepted: it counts until `decided(_:)`, its close or its deadline.
    func accepted(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.opening[id] = .some(nil) }
        let expiry = channel.eventLoop.scheduleTask(in: deadline) { [self] in end(id) }
        // Ended meanwhile (closed at once): its timer has nothing left to do.
        let counted = state.withLock { state -> Bool in
            guard state.opening[id] != nil else { return false }
            state.opening[id] = expiry
            return true
        }
        if !counted { expiry.cancel() }
        channel.closeFuture.whenComplete { [self] _ in end(id) }
    }

    /// The connection's first request was decided: it is a live socket, or plain HTTP.
    func decided(_ channel: any Channel) {
        end(ObjectIdentifier(channel))
    }

    /// Whether `gate`'s server may accept now; when it may not, `resume` is kept and called (once)
    /// when an opening connection decides.
    func mayAccept(_ gate: ObjectIdentifier, orResume resume: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard state.opening.count >= limit else { return true }
            state.held[gate] = resume
            return false
        }
    }

    /// `gate`'s server is gone: nothing to resume there.
    func stopHolding(_ gate: ObjectIdentifier) {
        _ = state.withLock { $0.held.removeValue(forKey: gate) }
    }

    private func end(_ id: ObjectIdentifier) {
        let (expiry, resumes) = state.withLock { state -> (Scheduled<Void>?, [@Sendable () -> Void]) in
            guard let expiry = state.opening.removeValue(forKey: id) else { return (nil, []) }
            guard state.opening.count < limit, !state.held.isEmpty else { return (expiry, []) }
            defer { state.held = [:] }
            return (expiry, Array(state.held.values))
        }
        expiry?.cancel()
        for resume in resumes { resume() }
    }
}

/// On a server channel: counts each accepted connection into the limit, and holds the server's
/// next read (so it accepts nothing) while the limit is reached.
final class OpeningGate: ChannelDuplexHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let limit: OpeningLimit

    init(limit: OpeningLimit) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        limit.accepted(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let held = NIOLoopBound(context, eventLoop: loop)
        guard limit.mayAccept(ObjectIdentifier(self), orResume: { loop.execute { held.value.read() } }) else { return }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        limit.stopHolding(ObjectIdentifier(self))
        context.fireChannelInactive()
    }
}
