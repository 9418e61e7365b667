import Foundation
import Synchronization

/// One open live socket (`/ws/chat`, `/ws/notifications`): who it is, its bounded outbound queue,
/// and (chat) the sends it is waiting to see acknowledged.
public final class LiveConnection: Sendable {
    public enum Outbound: Sendable {
        case text(String)
        /// Close with a reason (slow reader, signed out).
        case close(String)
    }

    public let id = UUID()
    public let userId: String
    public let sessionId: String
    public let outbound: AsyncStream<Outbound>
    private let continuation: AsyncStream<Outbound>.Continuation
    private let pending = Mutex<Set<String>>([])
    private let overflowed = Atomic<Bool>(false)

    /// `bufferLimit` frames may wait for a slow reader; one more and the connection is cut off.
    public init(userId: String, sessionId: String, bufferLimit: Int) {
        self.userId = userId
        self.sessionId = sessionId
        (outbound, continuation) = AsyncStream.makeStream(of: Outbound.self, bufferingPolicy: .bufferingOldest(bufferLimit))
    }

    /// Queues a frame; false when the reader is too slow (the connection then closes).
    @discardableResult
    public func send(_ text: String) -> Bool {
        if case .dropped = continuation.yield(.text(text)) {
            if !overflowed.exchange(true, ordering: .relaxed) { finish() }
            return false
        }
        return true
    }

    public var isOverflowed: Bool { overflowed.load(ordering: .relaxed) }

    /// Ends the outbound queue; the writer then closes the socket.
    public func finish() {
        continuation.finish()
    }

    public func close(reason: String) {
        continuation.yield(.close(reason))
        continuation.finish()
    }

    /// Remembers a send until its ack; bounded so a client cannot grow it without limit.
    public func awaitAck(_ clientMsgId: String) {
        pending.withLock { ids in
            if ids.count < 4096 { ids.insert(clientMsgId) }
        }
    }

    /// True (once) when this connection sent `clientMsgId` and has not been acked yet.
    public func takeAck(_ clientMsgId: String) -> Bool {
        pending.withLock { $0.remove(clientMsgId) != nil }
    }
}

/// The connections this instance holds, by user.
public final class ConnectionRegistry: Sendable {
    private let connections = Mutex<[String: [UUID: LiveConnection]]>([:])

    public init() {}

    /// Adds a connection; true when it is the user's first on this instance.
    @discardableResult
    public func add(_ connection: LiveConnection) -> Bool {
        connections.withLock { byUser in
            let first = byUser[connection.userId]?.isEmpty ?? true
            byUser[connection.userId, default: [:]][connection.id] = connection
            return first
        }
    }

    /// Removes a connection; true when it was the user's last on this instance.
    @discardableResult
    public func remove(_ connection: LiveConnection) -> Bool {
        connections.withLock { byUser in
            byUser[connection.userId]?[connection.id] = nil
            if byUser[connection.userId]?.isEmpty == true {
                byUser[connection.userId] = nil
                return true
            }
            return false
        }
    }

    public func connections(of userId: String) -> [LiveConnection] {
        connections.withLock { Array(($0[userId] ?? [:]).values) }
    }

    public var connectedUsers: [String] {
        connections.withLock { Array($0.keys) }
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
}
