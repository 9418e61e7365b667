import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdWebSocket
import LiveSockets
import Logging
import NIOWebSocket
import ServiceHTTP
import Synchronization

/// Limits that keep one client from hurting the others.
public struct ChatSocketLimits: Sendable {
    /// Frames queued for a slow reader before it is cut off (a batch can bring hundreds at once
    /// to a busy member; a client that stops reading is caught by `writeDeadline` first).
    public var outboundBuffer: Int = 4096
    /// The largest message a client may send (fragments included).
    public var maxMessageBytes: Int = 64 * 1024
    /// Sustained frames per second, and the burst above it, per connection: a client that comes
    /// back and flushes 200 queued sends at once has every one taken.
    public var framesPerSecond: Double = 50
    public var burst: Double = 250
    /// Sockets one user may hold on this stream, over every instance.
    public var socketsPerUser: Int = 20
    /// A write the client does not let finish within this (it stopped reading) cuts it off.
    public var writeDeadline: Duration = .seconds(10)
    /// How often open sockets are checked against ended sessions, for a sign-out whose event this
    /// instance missed (it normally closes them within a second of the event).
    public var revocationSweep: Duration = .seconds(10)

    public init() {}
}

/// `/ws/chat`: authenticated by the access token (cookie or bearer), Origin checked on upgrade.
/// The sender of every frame is the authenticated user, never a field of the frame. Reading a
/// socket never waits on the broker: sends, receipts and typing are queued for their batchers.
struct ChatSocket: Sendable {
    let verifier: AccessTokenVerifier
    let originPolicy: OriginPolicy
    let connections: ConnectionRegistry
    let presence: PresenceAnnouncer
    let sends: EventBatcher<MessageSent>
    let receipts: EventBatcher<ReceiptMarked>
    let typing: TypingRelay
    let instanceId: String
    let limits: ChatSocketLimits
    /// Ready once this instance's queues are consuming: before that, frames for a socket it
    /// accepted could not reach it, so it accepts none.
    let ready: InstanceReadiness
    let admission: UpgradeAdmission
    let quota: SocketQuota
    let logger: Logger

    func add(to router: Router<ServiceRequestContext>) {
        router.addLiveSocket(
            "/ws/chat", verifier: verifier, originPolicy: originPolicy, ready: ready, admission: admission, quota: quota.check
        ) { socket in
            try await serve(socket)
        }
    }

    private func serve(_ socket: LiveSocket) async throws {
        let identity = socket.identity
        let connection = LiveConnection(userId: identity.userId, sessionId: identity.sessionId, bufferLimit: limits.outboundBuffer, channel: socket.channel)
        if connections.add(connection) {
            await presence.connected(identity.userId)
        }
        await quota.opened(connection)
        let ended = await connection.serve(
            inbound: socket.inbound, outbound: socket.outbound, maxMessageBytes: limits.maxMessageBytes, framesPerSecond: limits.framesPerSecond,
            burst: limits.burst, logger: logger
        ) { text in
            handle(text, from: connection, identity: identity)
        }
        if connections.remove(connection) {
            await presence.disconnected(identity.userId)
        }
        await quota.closed(connection)
        if let ended { throw ended }
    }

    private func handle(_ text: String, from connection: LiveConnection, identity: Identity) {
        let frame: ClientFrame
        do {
            frame = try ClientFrame.decode(text)
        } catch {
            connection.send(LiveFrame.error(error.code, error.message, clientMsgId: error.clientMsgId))
            return
        }
        switch frame {
        case .send(let send):
            self.send(send, from: connection, identity: identity)
        case .delivered(let marker):
            mark(marker, delivered: true, from: connection, identity: identity)
        case .read(let marker):
            mark(marker, delivered: false, from: connection, identity: identity)
        case .typing(let signal):
            guard Self.isConversationId(signal.conversationId) else {
                connection.send(LiveFrame.error("invalid_frame", "typing needs a conversationId."))
                return
            }
            typing.submit(TypingRelay.Signal(userId: identity.userId, conversationId: signal.conversationId, typing: signal.typing, connection: connection))
        }
    }

    /// Queues `message.sent`; the ack comes back only once messages has stored it.
    private func send(_ send: ClientFrame.Send, from connection: LiveConnection, identity: Identity) {
        var problems = MessageLimits.problems(clientMsgId: send.clientMsgId, body: send.body)
        if !Self.isConversationId(send.conversationId) { problems["conversationId"] = "A conversation id." }
        guard problems.isEmpty else {
            let detail = problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: " ")
            connection.send(LiveFrame.error("invalid_frame", detail, clientMsgId: send.clientMsgId))
            return
        }
        connection.awaitAck(send.clientMsgId)
        let sent = MessageSent(
            senderId: identity.userId, clientMsgId: send.clientMsgId, conversationId: send.conversationId, body: send.body, instanceId: instanceId)
        guard sends.submit(sent) else {
            _ = connection.takeAck(send.clientMsgId)
            connection.send(LiveFrame.error("send_failed", "The server is busy; send it again.", clientMsgId: send.clientMsgId))
            return
        }
    }

    /// `delivered` / `read` up-to markers, recorded by messages (which checks membership and keeps
    /// them moving forward only).
    private func mark(_ marker: ClientFrame.Marker, delivered: Bool, from connection: LiveConnection, identity: Identity) {
        guard Self.isConversationId(marker.conversationId) else {
            connection.send(LiveFrame.error("invalid_frame", "\(delivered ? "delivered" : "read") needs a conversationId."))
            return
        }
        let marked = ReceiptMarked(
            conversationId: marker.conversationId, userId: identity.userId,
            deliveredSeq: delivered ? marker.seq : nil, readSeq: delivered ? nil : marker.seq
        )
        if !receipts.submit(marked) {
            connection.send(LiveFrame.error("send_failed", "The receipt was not accepted; send it again."))
        }
    }

    private static func isConversationId(_ id: String) -> Bool { MessageLimits.isPlausibleId(id) }
}

extension ConnectionRegistry {
    /// Sends whose batch the broker did not take: each waiting connection is told to send again.
    func refuse(_ sends: [MessageSent]) {
        for sent in sends {
            answer(
                sent.senderId, clientMsgId: sent.clientMsgId,
                with: LiveFrame.error("send_failed", "The message was not accepted; send it again.", clientMsgId: sent.clientMsgId))
        }
    }
}
