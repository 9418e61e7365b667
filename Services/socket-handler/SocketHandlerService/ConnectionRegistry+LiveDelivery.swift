import LiveSockets

extension ConnectionRegistry {
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
}

/// What `deliver` needs (the `live.deliver` payload, without the envelope).
struct LiveDeliveryFrames: Sendable {
    let recipients: [String]
    let frame: String
    let ack: (senderId: String, clientMsgId: String, frame: String)?
}
