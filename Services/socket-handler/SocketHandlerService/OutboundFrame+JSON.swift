import EventContracts

// The frames every chat message becomes, written by hand (see `JSONAppendable`): one per message
// for its recipients, one per send for its sender, and the receipts that follow it.

extension OutboundFrame.Message: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("message", message, to: &out)
        object.add("type", type, to: &out)
        object.end(to: &out)
    }
}

extension OutboundFrame.Ack: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("clientMsgId", clientMsgId, to: &out)
        object.add("message", message, to: &out)
        object.add("type", type, to: &out)
        object.end(to: &out)
    }
}

extension OutboundFrame.Receipt: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("conversationId", conversationId, to: &out)
        object.add("deliveredSeq", deliveredSeq, to: &out)
        object.add("readSeq", readSeq, to: &out)
        object.add("type", type, to: &out)
        object.add("userId", userId, to: &out)
        object.end(to: &out)
    }
}
