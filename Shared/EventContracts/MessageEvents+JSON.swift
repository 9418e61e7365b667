// The hot path's payloads, written by hand (see `JSONAppendable`): a send, a stored message, a
// live delivery, and the receipts a client sends for every message it gets. Keys in sorted order;
// optional members left out when nil, as the encoder does.

extension MessageSent: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("body", body, to: &out)
        object.add("clientMsgId", clientMsgId, to: &out)
        object.add("conversationId", conversationId, to: &out)
        object.add("instanceId", instanceId, to: &out)
        object.add("senderId", senderId, to: &out)
        object.end(to: &out)
    }
}

extension MessageStored: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("memberIds", memberIds, to: &out)
        object.add("message", message, to: &out)
        object.add("senderInstance", senderInstance, to: &out)
        object.end(to: &out)
    }
}

extension LiveDelivery: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("ack", ack, to: &out)
        object.add("frame", frame, to: &out)
        object.add("recipients", recipients, to: &out)
        object.end(to: &out)
    }
}

extension LiveAck: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("clientMsgId", clientMsgId, to: &out)
        object.add("frame", frame, to: &out)
        object.add("senderId", senderId, to: &out)
        object.end(to: &out)
    }
}

extension ReceiptMarked: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("conversationId", conversationId, to: &out)
        object.add("deliveredSeq", deliveredSeq, to: &out)
        object.add("readSeq", readSeq, to: &out)
        object.add("userId", userId, to: &out)
        object.end(to: &out)
    }
}

extension ReceiptUpdated: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("conversationId", conversationId, to: &out)
        object.add("deliveredSeq", deliveredSeq, to: &out)
        object.add("memberIds", memberIds, to: &out)
        object.add("readSeq", readSeq, to: &out)
        object.add("userId", userId, to: &out)
        object.end(to: &out)
    }
}
