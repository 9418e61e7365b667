// A message notification's payload, written once per conversation and batch by notifications
// (see `JSONAppendable`). Every member is optional: nil ones are left out, as the encoder does.

extension NotificationPayload: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var first = true
        out.append(UInt8(ascii: "{"))
        if let actorId {
            JSONText.appendKey("actorId", first: &first, to: &out)
            JSONText.append(actorId, to: &out)
        }
        if let conversationId {
            JSONText.appendKey("conversationId", first: &first, to: &out)
            JSONText.append(conversationId, to: &out)
        }
        if let conversationName {
            JSONText.appendKey("conversationName", first: &first, to: &out)
            JSONText.append(conversationName, to: &out)
        }
        if let conversationType {
            JSONText.appendKey("conversationType", first: &first, to: &out)
            JSONText.append(conversationType, to: &out)
        }
        if let count {
            JSONText.appendKey("count", first: &first, to: &out)
            JSONText.append(count, to: &out)
        }
        if let lastMessage {
            JSONText.appendKey("lastMessage", first: &first, to: &out)
            lastMessage.appendJSON(to: &out)
        }
        if let sessionId {
            JSONText.appendKey("sessionId", first: &first, to: &out)
            JSONText.append(sessionId, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension MessagePreview: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"body":"#.utf8)
        JSONText.append(body, to: &out)
        out.append(contentsOf: #","id":"#.utf8)
        JSONText.append(id, to: &out)
        out.append(contentsOf: #","senderId":"#.utf8)
        JSONText.append(senderId, to: &out)
        out.append(contentsOf: #","sentAt":"#.utf8)
        JSONText.append(sentAt, to: &out)
        out.append(contentsOf: #","seq":"#.utf8)
        JSONText.append(seq, to: &out)
        out.append(UInt8(ascii: "}"))
    }
}
