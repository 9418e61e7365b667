// A message notification's payload, written once per conversation and batch by notifications
// (see `JSONAppendable`). Every member is optional: nil ones are left out, as the encoder does.

extension NotificationPayload: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("actorId", actorId, to: &out)
        object.add("conversationId", conversationId, to: &out)
        object.add("conversationName", conversationName, to: &out)
        object.add("conversationType", conversationType, to: &out)
        object.add("count", count, to: &out)
        object.add("lastMessage", lastMessage, to: &out)
        object.add("sessionId", sessionId, to: &out)
        object.end(to: &out)
    }
}

extension MessagePreview: JSONAppendable {
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("body", body, to: &out)
        object.add("id", id, to: &out)
        object.add("senderId", senderId, to: &out)
        object.add("sentAt", sentAt, to: &out)
        object.add("seq", seq, to: &out)
        object.end(to: &out)
    }
}
