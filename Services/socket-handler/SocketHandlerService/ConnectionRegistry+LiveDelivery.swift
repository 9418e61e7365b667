import EventContracts
import LiveSockets

extension ConnectionRegistry {
    /// Delivers a batch's live frames to the recipients here, waking each event loop once for all
    /// of them (`SocketWakes`).
    func deliver(_ deliveries: some Sequence<LiveDelivery>) {
        var wakes = SocketWakes()
        for delivery in deliveries { deliver(delivery, waking: &wakes) }
        wakes.fire()
    }

    /// Delivers a live frame to the recipients here. The connection that sent an acknowledged
    /// message gets the `ack`; every other connection of the recipients gets the frame. The
    /// sockets to wake join `wakes`, for the caller to wake once its batch is queued.
    func deliver(_ delivery: LiveDelivery, waking wakes: inout SocketWakes) {
        for userId in delivery.recipients {
            for connection in connections(of: userId) {
                if let ack = delivery.ack, ack.senderId == userId, connection.takeAck(ack.clientMsgId) {
                    connection.send(ack.frame, waking: &wakes)
                } else {
                    connection.send(delivery.frame, waking: &wakes)
                }
            }
        }
    }

    /// A frame for the one connection of `userId` still waiting on `clientMsgId` (an answer to
    /// its send). When none is waiting here, `orEveryConnection` sends it to all of the user's
    /// connections (a refusal: the send's sender must hear of it, on whichever device).
    func answer(_ userId: String, clientMsgId: String, with frame: String, orEveryConnection: Bool = false) {
        let mine = connections(of: userId)
        for connection in mine where connection.takeAck(clientMsgId) {
            connection.send(frame)
            return
        }
        if orEveryConnection { for connection in mine { connection.send(frame) } }
    }
}
