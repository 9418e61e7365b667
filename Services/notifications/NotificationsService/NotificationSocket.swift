import EventContracts
import Foundation
import Hummingbird
import HummingbirdWebSocket
import LiveSockets
import Logging
import ServiceHTTP

/// `/ws/notifications`: a server → client stream of `notification` and `presence` frames for the
/// authenticated user. The client sends nothing it needs to; anything it does send gets an
/// `error` frame (rate-limited like chat: past 5 a second, `rate_limited`), and the socket stays open.
struct NotificationSocket: Sendable {
    let verifier: AccessTokenVerifier
    let originPolicy: OriginPolicy
    let connections: ConnectionRegistry
    let ready: InstanceReadiness
    let admission: UpgradeAdmission
    let quota: SocketQuota
    let outboundBuffer: Int
    let logger: Logger

    func add(to router: Router<ServiceRequestContext>) {
        router.addLiveSocket(
            "/ws/notifications", verifier: verifier, originPolicy: originPolicy, ready: ready, admission: admission, quota: quota.check
        ) { socket in
            try await serve(socket)
        }
    }

    private func serve(_ socket: LiveSocket) async throws {
        let identity = socket.identity
        let connection = LiveConnection(userId: identity.userId, sessionId: identity.sessionId, bufferLimit: outboundBuffer, channel: socket.channel)
        connections.add(connection)
        await quota.opened(connection)
        let ended = await connection.serve(
            inbound: socket.inbound, outbound: socket.outbound, maxMessageBytes: 4096, framesPerSecond: 5, burst: 10, logger: logger
        ) { _ in
            connection.send(LiveFrame.error("unknown_type", "This stream only sends; fetch with GET /api/notifications."))
        }
        connections.remove(connection)
        await quota.closed(connection)
        if let ended { throw ended }
    }
}

/// The frames of `/ws/notifications` (errors are `LiveFrame.error`).
enum NotificationFrame {
    struct Notification: Encodable {
        let type = "notification"
        let notification: NotificationRecord
    }

    struct Presence: Encodable {
        let type = "presence"
        let userId: String
        let online: Bool
        let lastSeenAt: Date
    }
}
