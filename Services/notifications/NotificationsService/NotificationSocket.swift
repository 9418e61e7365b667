import EventContracts
import Foundation
import Hummingbird
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
            "/ws/notifications", verifier: verifier, originPolicy: originPolicy, ready: ready, admission: admission, quota: quota,
            connections: connections,
            settings: LiveSocketSettings(outboundBuffer: outboundBuffer, maxMessageBytes: 4096, framesPerSecond: 5, burst: 10),
            logger: logger,
            received: { _, connection in
                connection.send(LiveFrame.error("unknown_type", "This stream only sends; fetch with GET /api/notifications."))
            }
        )
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
