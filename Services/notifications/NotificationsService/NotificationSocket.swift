import EventContracts
import Foundation
import Hummingbird
import HummingbirdWebSocket
import LiveSockets
import Logging
import ServiceHTTP

/// `/ws/notifications`: a server → client stream of `notification` and `presence` frames for the
/// authenticated user. The client sends nothing it needs to; anything it does send gets an
/// `error` frame (rate-limited like chat), and the socket stays open.
struct NotificationSocket: Sendable {
    let verifier: AccessTokenVerifier
    let originPolicy: OriginPolicy
    let connections: ConnectionRegistry
    let ready: InstanceReadiness
    let outboundBuffer: Int
    let logger: Logger

    func add(to router: Router<ServiceRequestContext>) {
        router.addLiveSocket("/ws/notifications", verifier: verifier, originPolicy: originPolicy, ready: ready) { identity, inbound, outbound in
            await serve(identity: identity, inbound: inbound, outbound: outbound)
        }
    }

    private func serve(identity: Identity, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let connection = LiveConnection(userId: identity.userId, sessionId: identity.sessionId, bufferLimit: outboundBuffer)
        connections.add(connection)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await connection.pump(into: outbound, logger: logger) }
            var bucket = TokenBucket(rate: 5, burst: 10)
            do {
                for try await _ in inbound.messages(maxSize: 4096) {
                    if connection.isOverflowed { break }
                    guard bucket.take() else { continue }
                    connection.send(LiveFrame.error("unknown_type", "This stream only sends; fetch with GET /api/notifications."))
                }
            } catch {
                logger.debug("websocket read ended", metadata: ["error": "\(error)"])
            }
            connection.finish()
            await group.waitForAll()
        }
        connections.remove(connection)
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
