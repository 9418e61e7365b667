import EventBus
import EventContracts
import Foundation
import Hummingbird
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
    /// A ping every period; a peer that has not answered the previous one is closed.
    public var pingPeriod: Duration = .seconds(20)

    var settings: LiveSocketSettings {
        LiveSocketSettings(
            outboundBuffer: outboundBuffer, maxMessageBytes: maxMessageBytes, framesPerSecond: framesPerSecond, burst: burst)
    }

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
            "/ws/chat", verifier: verifier, originPolicy: originPolicy, ready: ready, admission: admission, quota: quota,
            connections: connections, settings: limits.settings, logger: logger,
            opened: { connection, first in
                if first { await presence.connected(connection.userId) }
            },
            received: { text, connection in
                handle(text, from: connection)
            }
        )
    }

    /// The clean-up of a socket that closed (`LiveSocketKeeper` runs it).
    func closed(_ connection: LiveConnection, last: Bool) async {
        // Checked again: the user may have reconnected here since (a quick reconnect's
        // `connected` can run before this clean-up), and is then still online.
        if last && connections.connections(of: connection.userId).isEmpty { await presence.disconnected(connection.userId) }
    }

    private func handle(_ text: String, from connection: LiveConnection) {
        let frame: ClientFrame
        do {
            frame = try ClientFrame.decode(text)
        } catch {
            connection.send(LiveFrame.error(error.code, error.message, clientMsgId: error.clientMsgId))
            return
        }
        switch frame {
        case .send(let send):
            self.send(send, from: connection)
        case .delivered(let marker):
            mark(marker, delivered: true, from: connection)
        case .read(let marker):
            mark(marker, delivered: false, from: connection)
        case .typing(let signal):
            guard Self.isConversationId(signal.conversationId) else {
                connection.send(LiveFrame.error("invalid_frame", "typing needs a conversationId."))
                return
            }
            typing.submit(TypingRelay.Signal(userId: connection.userId, conversationId: signal.conversationId, typing: signal.typing, connection: connection))
        }
    }

    /// Queues `message.sent`; the ack comes back only once messages has stored it.
    private func send(_ send: ClientFrame.Send, from connection: LiveConnection) {
        var problems = MessageLimits.problems(clientMsgId: send.clientMsgId, body: send.body)
        if !Self.isConversationId(send.conversationId) { problems["conversationId"] = "A conversation id." }
        guard problems.isEmpty else {
            let detail = problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: " ")
            connection.send(LiveFrame.error("invalid_frame", detail, clientMsgId: send.clientMsgId))
            return
        }
        connection.awaitAck(send.clientMsgId)
        let sent = MessageSent(
            senderId: connection.userId, clientMsgId: send.clientMsgId, conversationId: send.conversationId, body: send.body, instanceId: instanceId)
        guard sends.submit(sent) else {
            _ = connection.takeAck(send.clientMsgId)
            connection.send(LiveFrame.error("send_failed", "The server is busy; send it again.", clientMsgId: send.clientMsgId))
            return
        }
    }

    /// `delivered` / `read` up-to markers, recorded by messages (which checks membership and keeps
    /// them moving forward only).
    private func mark(_ marker: ClientFrame.Marker, delivered: Bool, from connection: LiveConnection) {
        guard Self.isConversationId(marker.conversationId) else {
            connection.send(LiveFrame.error("invalid_frame", "\(delivered ? "delivered" : "read") needs a conversationId."))
            return
        }
        let marked = ReceiptMarked(
            conversationId: marker.conversationId, userId: connection.userId,
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
