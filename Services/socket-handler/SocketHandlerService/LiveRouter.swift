import EventBus
import EventContracts
import LiveSockets
import Logging

/// One frame to deliver live: to every connection of `recipients`, except that the connection
/// that sent an acknowledged message gets `ack` instead, on the sender's instance.
struct LiveRoute: Sendable {
    let frame: String
    let recipients: [String]
    var ack: (instance: String, ack: LiveAck)? = nil
}

/// Sends frames to the instances where their recipients are connected, and nowhere else: a batch
/// of routes costs one presence-registry round trip and one broker message per other destination
/// instance (the public contract). This instance's share goes to its own connections directly, as
/// its queue would have delivered it a hop later.
struct LiveRouter: Sendable {
    let presence: PresenceRegistry
    let publisher: EventPublisher
    let connections: ConnectionRegistry
    let producer: String
    let logger: Logger

    func route(_ routes: [LiveRoute]) async throws {
        guard !routes.isEmpty else { return }
        var instancesOf: [String: [String]] = [:]
        do {
            instancesOf = try await presence.instances(of: Set(routes.lazy.flatMap(\.recipients)))
        } catch {
            // Without the registry only the acks have a route (the send named its instance);
            // members catch up by seq, nothing is lost.
            logger.warning("presence registry unavailable: only acks are delivered live", metadata: ["error": "\(error)"])
        }
        var byInstance: [String: [LiveDelivery]] = [:]
        for route in routes {
            var recipientsOn: [String: [String]] = [:]
            for userId in route.recipients {
                for instance in instancesOf[userId] ?? [] { recipientsOn[instance, default: []].append(userId) }
            }
            if let ack = route.ack, !(recipientsOn[ack.instance]?.contains(ack.ack.senderId) ?? false) {
                recipientsOn[ack.instance, default: []].append(ack.ack.senderId)
            }
            for (instance, recipients) in recipientsOn {
                let ack = route.ack.flatMap { $0.instance == instance ? $0.ack : nil }
                byInstance[instance, default: []].append(LiveDelivery(recipients: recipients, frame: route.frame, ack: ack))
            }
        }
        connections.deliver(byInstance.removeValue(forKey: presence.instanceId) ?? [])
        let messages = try byInstance.map { instance, deliveries in try OutgoingMessage.toInstance(instance, producer: producer, deliveries) }
        guard !messages.isEmpty else { return }
        let outcomes = try await publisher.publish(messages)
        // The broker refused one (its own failure): the batch is routed again, as for an outage
        // or a publish that timed out, its local frames too; a frame that reaches a client twice
        // is dropped there by its id.
        if outcomes.contains(.nacked) { throw EventBusError(.nacked, "live delivery refused by the broker") }
        if outcomes.contains(.unroutable) {
            // An instance that went away since its last heartbeat: its clients reconnect elsewhere
            // and catch up.
            logger.debug("live delivery to a departed instance dropped")
        }
    }
}
