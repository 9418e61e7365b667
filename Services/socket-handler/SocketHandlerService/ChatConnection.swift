import Foundation
import Synchronization

/// One open `/ws/chat` socket: who it is, its bounded outbound queue, and the sends it is waiting
/// to see acknowledged.
final class ChatConnection: Sendable {
    enum Outbound: Sendable {
        case text(String)
        /// Close with a reason (slow reader, signed out).
        case close(String)
    }

    let id = UUID()
    let userId: String
    let sessionId: String
    let outbound: AsyncStream<Outbound>
    private let continuation: AsyncStream<Outbound>.Continuation
    private let pending = Mutex<Set<String>>([])
    private let overflowed = Atomic<Bool>(false)

    /// `bufferLimit` frames may wait for a slow reader; one more and the connection is cut off.
    init(userId: String, sessionId: String, bufferLimit: Int) {
        self.userId = userId
        self.sessionId = sessionId
        (outbound, continuation) = AsyncStream.makeStream(of: Outbound.self, bufferingPolicy: .bufferingOldest(bufferLimit))
    }

    /// Queues a frame; false when the reader is too slow (the connection then closes).
    @discardableResult
    func send(_ text: String) -> Bool {
        if case .dropped = continuation.yield(.text(text)) {
            if !overflowed.exchange(true, ordering: .relaxed) { finish() }
            return false
        }
        return true
    }

    var isOverflowed: Bool { overflowed.load(ordering: .relaxed) }

    /// Ends the outbound queue; the writer then closes the socket.
    func finish() {
        continuation.finish()
    }

    func close(reason: String) {
        continuation.yield(.close(reason))
        continuation.finish()
    }

    /// Remembers a send until its ack; bounded so a client cannot grow it without limit.
    func awaitAck(_ clientMsgId: String) {
        pending.withLock { ids in
            if ids.count < 4096 { ids.insert(clientMsgId) }
        }
    }

    /// True (once) when this connection sent `clientMsgId` and has not been acked yet.
    func takeAck(_ clientMsgId: String) -> Bool {
        pending.withLock { $0.remove(clientMsgId) != nil }
    }
}

/// The connections this instance holds, by user.
final class ConnectionRegistry: Sendable {
    private let connections = Mutex<[String: [UUID: ChatConnection]]>([:])

    /// Adds a connection; true when it is the user's first on this instance.
    @discardableResult
    func add(_ connection: ChatConnection) -> Bool {
        connections.withLock { byUser in
            let first = byUser[connection.userId]?.isEmpty ?? true
            byUser[connection.userId, default: [:]][connection.id] = connection
            return first
        }
    }

    /// Removes a connection; true when it was the user's last on this instance.
    @discardableResult
    func remove(_ connection: ChatConnection) -> Bool {
        connections.withLock { byUser in
            byUser[connection.userId]?[connection.id] = nil
            if byUser[connection.userId]?.isEmpty == true {
                byUser[connection.userId] = nil
                return true
            }
            return false
        }
    }

    func connections(of userId: String) -> [ChatConnection] {
        connections.withLock { Array(($0[userId] ?? [:]).values) }
    }

    var connectedUsers: [String] {
        connections.withLock { Array($0.keys) }
    }

    /// Delivers a live frame to the recipients here. The connection that sent an acknowledged
    /// message gets the `ack`; every other connection of the recipients gets the frame (none when
    /// it is empty: a reply meant only for the sending connection).
    func deliver(_ delivery: LiveDeliveryFrames) {
        for userId in delivery.recipients {
            for connection in connections(of: userId) {
                if let ack = delivery.ack, ack.senderId == userId, connection.takeAck(ack.clientMsgId) {
                    connection.send(ack.frame)
                } else if !delivery.frame.isEmpty {
                    connection.send(delivery.frame)
                }
            }
        }
    }

    /// Closes every socket of a session (signed out).
    func close(sessionId: String, of userId: String, reason: String) {
        for connection in connections(of: userId) where connection.sessionId == sessionId {
            connection.close(reason: reason)
        }
    }
}

/// What `deliver` needs (the `live.deliver` payload, without the envelope).
struct LiveDeliveryFrames: Sendable {
    let recipients: [String]
    let frame: String
    let ack: (senderId: String, clientMsgId: String, frame: String)?
}
