import EventBus
import EventContracts
import Foundation
import Synchronization
import Hummingbird
import HummingbirdWebSocket
import LiveSockets
import Logging
import NIOWebSocket
import ServiceHTTP

/// Limits that keep one client from hurting the others.
public struct ChatSocketLimits: Sendable {
    /// Frames queued for a slow reader before it is cut off.
    public var outboundBuffer: Int = 256
    /// The largest message a client may send (fragments included).
    public var maxMessageBytes: Int = 64 * 1024
    /// Sustained frames per second, and the burst above it, per connection.
    public var framesPerSecond: Double = 50
    public var burst: Double = 100

    public init() {}
}

/// `/ws/chat`: authenticated by the access token (cookie or bearer), Origin checked on upgrade.
/// The sender of every frame is the authenticated user, never a field of the frame.
struct ChatSocket: Sendable {
    let verifier: AccessTokenVerifier
    let originPolicy: OriginPolicy
    let connections: ConnectionRegistry
    let presence: PresenceAnnouncer
    let membership: MembershipCache
    let router: LiveRouter
    let publisher: EventPublisher
    let instanceId: String
    let limits: ChatSocketLimits
    /// Ready once this instance's queues are consuming: before that, frames for a socket it
    /// accepted could not reach it, so it accepts none.
    let ready: InstanceReadiness
    let logger: Logger

    func add(to router: Router<ServiceRequestContext>) {
        router.addLiveSocket("/ws/chat", verifier: verifier, originPolicy: originPolicy, ready: ready) { identity, inbound, outbound in
            try await serve(identity: identity, inbound: inbound, outbound: outbound)
        }
    }

    private func serve(identity: Identity, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let connection = LiveConnection(userId: identity.userId, sessionId: identity.sessionId, bufferLimit: limits.outboundBuffer)
        if connections.add(connection) {
            await presence.connected(identity.userId)
        }
        await connection.serve(
            inbound: inbound, outbound: outbound, maxMessageBytes: limits.maxMessageBytes, framesPerSecond: limits.framesPerSecond,
            burst: limits.burst, logger: logger
        ) { text in
            await handle(text, from: connection, identity: identity)
        }
        if connections.remove(connection) {
            await presence.disconnected(identity.userId)
        }
    }

    private func handle(_ text: String, from connection: LiveConnection, identity: Identity) async {
        let frame: InboundFrame
        do {
            frame = try JSONDecoder().decode(InboundFrame.self, from: Data(text.utf8))
        } catch {
            connection.send(LiveFrame.error("invalid_frame", "A frame is one JSON object with a string \"type\" and fields of the right types."))
            return
        }
        switch frame.type {
        case "send":
            await send(frame, from: connection, identity: identity)
        case "delivered", "read":
            await mark(frame, from: connection, identity: identity)
        case "typing":
            await typing(frame, from: connection, identity: identity)
        default:
            connection.send(LiveFrame.error("unknown_type", "Unknown frame type.", clientMsgId: frame.clientMsgId))
        }
    }

    /// Publishes `message.sent`; the ack comes back only once messages has stored it.
    private func send(_ frame: InboundFrame, from connection: LiveConnection, identity: Identity) async {
        guard let clientMsgId = frame.clientMsgId, let conversationId = frame.conversationId, let body = frame.body,
              !conversationId.isEmpty, conversationId.count <= 64
        else {
            connection.send(LiveFrame.error("invalid_frame", "send needs clientMsgId, conversationId and body.", clientMsgId: frame.clientMsgId))
            return
        }
        let problems = MessageLimits.problems(clientMsgId: clientMsgId, body: body)
        guard problems.isEmpty else {
            let detail = problems.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: " ")
            connection.send(LiveFrame.error("invalid_frame", detail, clientMsgId: clientMsgId))
            return
        }
        connection.awaitAck(clientMsgId)
        let sent = MessageSent(senderId: identity.userId, clientMsgId: clientMsgId, conversationId: conversationId, body: body, instanceId: instanceId)
        do {
            try await publisher.publish(EventEnvelope(producer: "socket-handler", payload: sent))
        } catch {
            _ = connection.takeAck(clientMsgId)
            logger.warning("could not hand a send to the broker", metadata: ["error": "\(error)"])
            connection.send(LiveFrame.error("send_failed", "The message was not accepted; send it again.", clientMsgId: clientMsgId))
        }
    }
}

extension ChatSocket {
    /// `delivered` / `read` up-to markers, recorded by messages (which checks membership and keeps
    /// them moving forward only).
    fileprivate func mark(_ frame: InboundFrame, from connection: LiveConnection, identity: Identity) async {
        guard let conversationId = frame.conversationId, !conversationId.isEmpty, conversationId.count <= 64,
              let seq = frame.seq, seq >= 0
        else {
            connection.send(LiveFrame.error("invalid_frame", "\(frame.type) needs conversationId and a seq of 0 or more."))
            return
        }
        let marked = ReceiptMarked(
            conversationId: conversationId, userId: identity.userId,
            deliveredSeq: frame.type == "delivered" ? seq : nil, readSeq: frame.type == "read" ? seq : nil
        )
        do {
            try await publisher.publish(EventEnvelope(producer: "socket-handler", payload: marked))
        } catch {
            connection.send(LiveFrame.error("send_failed", "The receipt was not accepted; send it again."))
        }
    }

    /// Typing goes to the other members' connections and is not stored. Only members may type.
    fileprivate func typing(_ frame: InboundFrame, from connection: LiveConnection, identity: Identity) async {
        guard let conversationId = frame.conversationId, !conversationId.isEmpty, conversationId.count <= 64, let isTyping = frame.typing else {
            connection.send(LiveFrame.error("invalid_frame", "typing needs conversationId and a boolean typing."))
            return
        }
        let members = try? await membership.members(of: conversationId)
        guard let members, members.contains(identity.userId) else {
            connection.send(LiveFrame.error("not_found", "No such conversation, or you are not a member."))
            return
        }
        let typing = LiveFrame.encode(OutboundFrame.Typing(conversationId: conversationId, userId: identity.userId, typing: isTyping))
        try? await router.route(frame: typing, to: members.filter { $0 != identity.userId }, ack: nil)
    }
}
