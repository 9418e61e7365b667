import Foundation
import Metrics
import NIOCore
import NIOWebSocket
import ServiceConfig
import Synchronization

/// One open live socket (`/ws/chat`, `/ws/notifications`): who it is, its bounded outbound queue,
/// and (chat) the sends it is waiting to see acknowledged. Frames are queued from any thread and
/// written by the socket's handler on its event loop (`LiveSocketHandler`), so a socket holds no
/// task of its own.
public final class LiveConnection: Sendable {
    public enum Outbound: Sendable {
        case text(String)
        /// Close with a code and a reason (signed out: 1000; shutting down: 1001, going away).
        case close(WebSocketErrorCode, String)
    }

    /// Why a socket is cut off (`cutOff(_:)`), which says the code of its close frame.
    public enum CutOff: Sendable, Equatable {
        /// More than the buffer's frames queued up for it: 1008 (policy).
        case overflowed
        /// Its client stopped reading: a write waited past the keeper's deadline: 1013 (try again
        /// later).
        case stuck
        /// The server is stopping and the socket has not answered its close: no second frame.
        case stopping

        var code: WebSocketErrorCode? {
            switch self {
            case .overflowed: .policyViolation
            case .stuck: .unknown(1013)
            case .stopping: nil
            }
        }
    }

    private struct Queue {
        var items: [Outbound] = []
        /// A wake is on its way, or the handler waits for the socket to take writes again.
        var draining = false
        /// Closing or closed: nothing more is queued.
        var ended = false
    }

    public let id = UUID()
    public let userId: String
    public let sessionId: String
    private let bufferLimit: Int
    private let queue = Mutex(Queue())
    /// Sends waiting for their ack: how many times each was sent (a retry of a send still waiting
    /// gets its own answer), and when first (for the send-to-ack latency).
    private let pending = Mutex<[String: (count: Int, sent: ContinuousClock.Instant)]>([:])
    /// Why it was cut off first, if it was (its socket then closes within `closeWriteTimeout`).
    private let cutOffReason = Mutex<CutOff?>(nil)
    /// The socket's handler while it is in the channel's pipeline (set and read on the channel's
    /// loop only), which the connection calls there directly: to write what is queued, to ping, to
    /// cut off.
    private let handler: NIOLoopBoundBox<LiveSocketHandler?>
    /// Since when (ms on the uptime clock) queued frames wait for the client to read; 0 when none do.
    private let blockedSince = Atomic<Int64>(0)

    /// `bufferLimit` frames may wait for a slow reader; one more and the connection is cut off.
    /// `eventLoop` is the socket's channel's.
    init(userId: String, sessionId: String, bufferLimit: Int, eventLoop: any EventLoop) {
        self.userId = userId
        self.sessionId = sessionId
        self.bufferLimit = bufferLimit
        self.handler = NIOLoopBoundBox.makeEmptyBox(valueType: LiveSocketHandler.self, eventLoop: eventLoop)
    }

    /// Queues a frame; false when the socket is closing or the reader is too slow (the connection
    /// is then cut off).
    @discardableResult
    public func send(_ text: String) -> Bool {
        enqueue(.text(text)) { wakeNow() }
    }

    /// Queues a frame as `send(_:)` does, but leaves waking the socket's handler to `wakes`: a
    /// batch of frames for many sockets then wakes each event loop once, not once per frame.
    @discardableResult
    public func send(_ text: String, waking wakes: inout SocketWakes) -> Bool {
        enqueue(.text(text)) { wakes.add(self) }
    }

    /// Queues a close frame: what was queued before it still goes out, nothing after it does.
    public func close(reason: String, code: WebSocketErrorCode = .normalClosure) {
        enqueue(.close(code, reason)) { wakeNow() }
    }

    /// Appends to the queue and has `wake` wake the handler to write it (at once, `wakeNow`, or
    /// with a batch's other sockets), unless a wake is on its way already. A text past the
    /// buffer's limit cuts the connection off instead.
    @discardableResult
    private func enqueue(_ item: Outbound, wake: () -> Void) -> Bool {
        enum Outcome { case queued(wake: Bool), overflowed, ended }
        let outcome = queue.withLock { queue -> Outcome in
            guard !queue.ended else { return .ended }
            if case .text = item, queue.items.count >= bufferLimit {
                queue.items = []
                queue.ended = true
                return .overflowed
            }
            queue.items.append(item)
            if case .close = item { queue.ended = true }
            let wake = !queue.draining
            queue.draining = true
            return .queued(wake: wake)
        }
        switch outcome {
        case .queued(let needsWake):
            if needsWake { wake() }
            return true
        case .overflowed:
            cutOff(.overflowed)
            return false
        case .ended:
            return false
        }
    }

    /// The event loop of the socket's channel, where its handler runs.
    var eventLoop: any EventLoop { handler.eventLoop }

    /// Has the socket's handler write what is queued: at once on its loop (as `SocketWakes` calls
    /// it), else as a task there.
    func wakeNow() {
        onHandler { $0.writeQueued() }
    }

    /// Has the socket's handler ping the client (closing it if the last ping went unanswered).
    func ping() {
        onHandler { $0.ping() }
    }

    /// Runs `body` with the socket's handler on its loop: at once when called there, else as a
    /// task on it; not at all once the handler has left the pipeline (the socket closed).
    private func onHandler(_ body: @escaping @Sendable (LiveSocketHandler) -> Void) {
        if handler.eventLoop.inEventLoop {
            handler.value.map(body)
        } else {
            handler.eventLoop.execute { [handler] in handler.value.map(body) }
        }
    }

    /// On the socket's loop: its handler joined the pipeline.
    func handlerJoined(_ socketHandler: LiveSocketHandler) {
        handler.value = socketHandler
    }

    /// On the socket's loop: its handler left the pipeline (the socket closed). The connection
    /// outlives the socket until its clean-up ran, and must not keep the handler, nor call it.
    func handlerLeft() {
        handler.value = nil
    }

    /// What is queued, for the handler to write; an empty answer ends the draining.
    func takeQueued() -> [Outbound] {
        queue.withLock { queue in
            let items = queue.items
            queue.items = []
            if items.isEmpty { queue.draining = false }
            return items
        }
    }

    /// The socket closed: nothing more is queued, and what was is dropped.
    func ended() {
        queue.withLock { queue in
            queue.items = []
            queue.ended = true
        }
    }

    /// Cuts the connection off: what was queued is dropped, nothing more is queued, and its
    /// handler ends the socket (a close frame with the reason's code, and the socket closed once
    /// that is written or a moment later). The client catches up by seq when it reconnects.
    public func cutOff(_ reason: CutOff) {
        ended()
        cutOffReason.withLock { $0 = $0 ?? reason }
        onHandler { $0.cutOff(reason) }
    }

    /// The handler marks when the socket stops and starts taking writes again, for `isStuck`.
    func blocked(_ blocked: Bool) {
        if !blocked {
            blockedSince.store(0, ordering: .relaxed)
        } else if blockedSince.load(ordering: .relaxed) == 0 {
            blockedSince.store(Self.nowMilliseconds, ordering: .relaxed)
        }
    }

    /// Whether queued frames have waited on the client for longer than `limit`.
    public func isStuck(longerThan limit: Duration) -> Bool {
        let since = blockedSince.load(ordering: .relaxed)
        return since != 0 && Self.nowMilliseconds - since > Int64(limit.milliseconds)
    }

    private static var nowMilliseconds: Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }

    public var isOverflowed: Bool { cutOffReason.withLock { $0 } == .overflowed }

    var wasCutOff: Bool { cutOffReason.withLock { $0 } != nil }

    /// Remembers a send until its ack; bounded so a client cannot grow it without limit.
    public func awaitAck(_ clientMsgId: String) {
        let now = ContinuousClock.now
        pending.withLock { ids in
            if let waiting = ids[clientMsgId] {
                ids[clientMsgId] = (waiting.count + 1, waiting.sent)
            } else if ids.count < 4096 {
                ids[clientMsgId] = (1, now)
            }
        }
    }

    /// True (once per send) when this connection sent `clientMsgId` and has not been answered.
    public func takeAck(_ clientMsgId: String) -> Bool {
        let sent = pending.withLock { ids -> ContinuousClock.Instant? in
            guard let waiting = ids[clientMsgId] else { return nil }
            ids[clientMsgId] = waiting.count > 1 ? (waiting.count - 1, waiting.sent) : nil
            return waiting.sent
        }
        guard let sent else { return false }
        let waited = ContinuousClock.now - sent
        LiveConnection.sendToAck.recordNanoseconds(waited.nanoseconds)
        return true
    }

    /// How long sends wait for their ack, from the frame's arrival to the ack leaving.
    static let sendToAck = Timer(label: "swiftchat_send_to_ack_seconds")
}

/// The connections this instance holds, by user.
public final class ConnectionRegistry: Sendable {
    private let connections = Mutex<(byUser: [String: [UUID: LiveConnection]], count: Int, changes: Int)>(([:], 0, 0))
    private let open: Gauge
    /// Sockets that closed, and whether each was its user's last here: the clean-up that waits on
    /// other servers (presence, quota) runs from `LiveSocketKeeper`, not on the socket's loop.
    let closings: AsyncStream<Closing>
    private let closingsContinuation: AsyncStream<Closing>.Continuation

    struct Closing: Sendable {
        let connection: LiveConnection
        let last: Bool
    }

    /// `stream` names the metric's series (`chat`, `notifications`).
    public init(stream: String = "live") {
        open = Gauge(label: "swiftchat_sockets_open", dimensions: [("stream", stream)])
        (closings, closingsContinuation) = AsyncStream.makeStream(of: Closing.self)
    }

    /// A socket closed: out of the registry, and its clean-up queued.
    func closed(_ connection: LiveConnection) {
        closingsContinuation.yield(Closing(connection: connection, last: remove(connection)))
    }

    /// No socket closes any more (the instance is stopping): the clean-up queue ends.
    func endClosings() {
        closingsContinuation.finish()
    }

    /// Adds a connection; true when it is the user's first on this instance.
    @discardableResult
    public func add(_ connection: LiveConnection) -> Bool {
        let (first, count) = connections.withLock { state in
            let first = state.byUser[connection.userId]?.isEmpty ?? true
            if state.byUser[connection.userId, default: [:]].updateValue(connection, forKey: connection.id) == nil {
                state.count += 1
                state.changes += 1
            }
            return (first, state.count)
        }
        open.record(count)
        return first
    }

    /// Removes a connection; true when it was the user's last on this instance.
    @discardableResult
    public func remove(_ connection: LiveConnection) -> Bool {
        let (last, count) = connections.withLock { state in
            if state.byUser[connection.userId]?.removeValue(forKey: connection.id) != nil {
                state.count -= 1
                state.changes += 1
            }
            if state.byUser[connection.userId]?.isEmpty == true {
                state.byUser[connection.userId] = nil
                return (true, state.count)
            }
            return (false, state.count)
        }
        open.record(count)
        return last
    }

    /// How many times a socket joined or left, ever: churn, for `LiveSocketKeeper`'s memory trim.
    var changes: Int { connections.withLock { $0.changes } }

    public func connections(of userId: String) -> [LiveConnection] {
        connections.withLock { Array(($0.byUser[userId] ?? [:]).values) }
    }

    public var connectedUsers: [String] {
        connections.withLock { Array($0.byUser.keys) }
    }

    /// Every connection here.
    public var all: [LiveConnection] {
        connections.withLock { $0.byUser.values.flatMap(\.values) }
    }

    /// Sends a frame to every connection of these users here.
    public func send(_ frame: String, to userIds: some Sequence<String>) {
        for userId in userIds {
            for connection in connections(of: userId) { connection.send(frame) }
        }
    }

    /// Closes every socket of a session (signed out).
    public func close(sessionId: String, of userId: String, reason: String) {
        for connection in connections(of: userId) where connection.sessionId == sessionId {
            connection.close(reason: reason)
        }
    }

    /// Cuts off every connection whose write has waited on its client for longer than `limit`
    /// (once: one cut off already closes within a second, and is counted once).
    public func cutOffStuck(longerThan limit: Duration) -> Int {
        var cut = 0
        for connection in all where connection.isStuck(longerThan: limit) && !connection.wasCutOff {
            connection.cutOff(.stuck)
            cut += 1
        }
        return cut
    }

    /// Closes every socket here and takes no more: the server is going away (1001), so clients
    /// reconnect elsewhere.
    public func closeAllGoingAway() {
        closing.store(true, ordering: .relaxed)
        for connection in all { connection.close(reason: "server shutting down", code: .goingAway) }
    }

    /// The server is going away: upgrades are refused (503), so clients reconnect elsewhere.
    public var isClosing: Bool { closing.load(ordering: .relaxed) }
    private let closing = Atomic<Bool>(false)

    /// Closes every socket of a user (the account was deleted).
    public func closeAll(of userId: String, reason: String) {
        for connection in connections(of: userId) { connection.close(reason: reason) }
    }
}
