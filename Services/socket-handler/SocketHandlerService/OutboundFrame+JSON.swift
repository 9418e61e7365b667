import EventContracts

// The frames every chat message becomes, written by hand (see `JSONAppendable`): one per message
// for its recipients, one per send for its sender, and the receipts that follow it.

extension OutboundFrame.Message: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"message":"#.utf8)
        message.appendJSON(to: &out)
        out.append(contentsOf: #","type":"message"}"#.utf8)
    }
}

extension OutboundFrame.Ack: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"clientMsgId":"#.utf8)
        JSONText.append(clientMsgId, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        message.appendJSON(to: &out)
        out.append(contentsOf: #","type":"ack"}"#.utf8)
    }
}

extension OutboundFrame.Receipt: JSONAppendable {
    func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"conversationId":"#.utf8)
        JSONText.append(conversationId, to: &out)
        out.append(contentsOf: #","deliveredSeq":"#.utf8)
        JSONText.append(deliveredSeq, to: &out)
        out.append(contentsOf: #","readSeq":"#.utf8)
        JSONText.append(readSeq, to: &out)
        out.append(contentsOf: #","type":"receipt","userId":"#.utf8)
        JSONText.append(userId, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}
