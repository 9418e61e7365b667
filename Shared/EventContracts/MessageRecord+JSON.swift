import Foundation

// A history page is the largest answer the API gives (up to 1,000 messages), and a client catching
// up asks for several in a row. `JSONEncoder` took 5.6 ms to encode a page of 1,000 here, 2.3 ms of
// it in the date strategy's closure; written by hand it is a small fraction of that. The text is
// the JSON `APIJSON.encoder` writes for the same value: keys sorted, `/` not escaped, RFC 3339 times.

extension MessageRecord: JSONAppendable {
    /// `{"<key>":[…messages…]}`, as `APIJSON.encoder` would write `[key: messages]`.
    public static func json(_ messages: [MessageRecord], under key: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + messages.count * 320)
        out.append(UInt8(ascii: "{"))
        JSONText.append(key, to: &out)
        out.append(contentsOf: #":["#.utf8)
        for (index, message) in messages.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            message.appendJSON(to: &out)
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// This message as a JSON object, keys in sorted order.
    public func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("body", body, to: &out)
        object.add("clientMsgId", clientMsgId, to: &out)
        object.add("conversationId", conversationId, to: &out)
        object.add("id", id, to: &out)
        object.add("senderId", senderId, to: &out)
        object.add("sentAt", sentAt, to: &out)
        object.add("seq", seq, to: &out)
        object.end(to: &out)
    }
}

extension MessageRecord: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var body, clientMsgId, conversationId, id, senderId: String?
        var sentAt: Date?
        var seq: Int64?
        try reader.readObject { reader, key in
            switch key {
            case "body": body = try reader.readString()
            case "clientMsgId": clientMsgId = try reader.readString()
            case "conversationId": conversationId = try reader.readString()
            case "id": id = try reader.readString()
            case "senderId": senderId = try reader.readString()
            case "sentAt": sentAt = try reader.readDate()
            case "seq": seq = try reader.readInt64()
            default: try reader.skipValue()
            }
        }
        self.init(
            id: try reader.required(id, "id"), conversationId: try reader.required(conversationId, "conversationId"), seq: try reader.required(seq, "seq"),
            senderId: try reader.required(senderId, "senderId"), clientMsgId: try reader.required(clientMsgId, "clientMsgId"),
            body: try reader.required(body, "body"), sentAt: try reader.required(sentAt, "sentAt"))
    }
}
