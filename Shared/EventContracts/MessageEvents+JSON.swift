// The hot path's payloads, written by hand (see `JSONAppendable`): a send, a stored message, a
// live delivery, and the receipts a client sends for every message it gets. Keys in sorted order;
// optional members left out when nil, as the encoder does.

extension MessageSent: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"body":"#.utf8)
        JSONText.append(body, to: &out)
        out.append(contentsOf: #","clientMsgId":"#.utf8)
        JSONText.append(clientMsgId, to: &out)
        out.append(contentsOf: #","conversationId":"#.utf8)
        JSONText.append(conversationId, to: &out)
        out.append(contentsOf: #","instanceId":"#.utf8)
        JSONText.append(instanceId, to: &out)
        out.append(contentsOf: #","senderId":"#.utf8)
        JSONText.append(senderId, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension MessageStored: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"memberIds":"#.utf8)
        JSONText.append(memberIds, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        message.appendJSON(to: &out)
        if let senderInstance {
            out.append(contentsOf: #","senderInstance":"#.utf8)
            JSONText.append(senderInstance, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension LiveDelivery: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        if let ack {
            out.append(contentsOf: #""ack":"#.utf8)
            ack.appendJSON(to: &out)
            out.append(UInt8(ascii: ","))
        }
        out.append(contentsOf: #""frame":"#.utf8)
        JSONText.append(frame, to: &out)
        out.append(contentsOf: #","recipients":"#.utf8)
        JSONText.append(recipients, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension LiveAck: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"clientMsgId":"#.utf8)
        JSONText.append(clientMsgId, to: &out)
        out.append(contentsOf: #","frame":"#.utf8)
        JSONText.append(frame, to: &out)
        out.append(contentsOf: #","senderId":"#.utf8)
        JSONText.append(senderId, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension ReceiptMarked: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"conversationId":"#.utf8)
        JSONText.append(conversationId, to: &out)
        if let deliveredSeq {
            out.append(contentsOf: #","deliveredSeq":"#.utf8)
            JSONText.append(deliveredSeq, to: &out)
        }
        if let readSeq {
            out.append(contentsOf: #","readSeq":"#.utf8)
            JSONText.append(readSeq, to: &out)
        }
        out.append(contentsOf: #","userId":"#.utf8)
        JSONText.append(userId, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}

extension ReceiptUpdated: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"conversationId":"#.utf8)
        JSONText.append(conversationId, to: &out)
        out.append(contentsOf: #","deliveredSeq":"#.utf8)
        JSONText.append(deliveredSeq, to: &out)
        out.append(contentsOf: #","memberIds":"#.utf8)
        JSONText.append(memberIds, to: &out)
        out.append(contentsOf: #","readSeq":"#.utf8)
        JSONText.append(readSeq, to: &out)
        out.append(contentsOf: #","userId":"#.utf8)
        JSONText.append(userId, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}
