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

// The same payloads, read by hand (see `JSONReadable`): every member by its key, others skipped.

extension MessageSent: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var body, clientMsgId, conversationId, instanceId, senderId: String?
        try reader.readObject { reader, key in
            switch key {
            case "body": body = try reader.readString()
            case "clientMsgId": clientMsgId = try reader.readString()
            case "conversationId": conversationId = try reader.readString()
            case "instanceId": instanceId = try reader.readString()
            case "senderId": senderId = try reader.readString()
            default: try reader.skipValue()
            }
        }
        self.init(
            senderId: try reader.required(senderId, "senderId"), clientMsgId: try reader.required(clientMsgId, "clientMsgId"),
            conversationId: try reader.required(conversationId, "conversationId"), body: try reader.required(body, "body"),
            instanceId: try reader.required(instanceId, "instanceId")
        )
    }
}

extension MessageStored: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var memberIds: [String]?
        var message: MessageRecord?
        var senderInstance: String?
        try reader.readObject { reader, key in
            switch key {
            case "memberIds": memberIds = try reader.readStrings()
            case "message": message = try MessageRecord(json: &reader)
            case "senderInstance": senderInstance = try reader.readOptional { try $0.readString() }
            default: try reader.skipValue()
            }
        }
        self.init(
            message: try reader.required(message, "message"), memberIds: try reader.required(memberIds, "memberIds"), senderInstance: senderInstance)
    }
}

extension LiveDelivery: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var ack: LiveAck?
        var frame: String?
        var recipients: [String]?
        try reader.readObject { reader, key in
            switch key {
            case "ack": ack = try reader.readOptional { try LiveAck(json: &$0) }
            case "frame": frame = try reader.readString()
            case "recipients": recipients = try reader.readStrings()
            default: try reader.skipValue()
            }
        }
        self.init(recipients: try reader.required(recipients, "recipients"), frame: try reader.required(frame, "frame"), ack: ack)
    }
}

extension LiveAck: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var clientMsgId, frame, senderId: String?
        try reader.readObject { reader, key in
            switch key {
            case "clientMsgId": clientMsgId = try reader.readString()
            case "frame": frame = try reader.readString()
            case "senderId": senderId = try reader.readString()
            default: try reader.skipValue()
            }
        }
        self.init(
            senderId: try reader.required(senderId, "senderId"), clientMsgId: try reader.required(clientMsgId, "clientMsgId"),
            frame: try reader.required(frame, "frame"))
    }
}

extension ReceiptMarked: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var conversationId, userId: String?
        var deliveredSeq, readSeq: Int64?
        try reader.readObject { reader, key in
            switch key {
            case "conversationId": conversationId = try reader.readString()
            case "deliveredSeq": deliveredSeq = try reader.readOptional { try $0.readInt64() }
            case "readSeq": readSeq = try reader.readOptional { try $0.readInt64() }
            case "userId": userId = try reader.readString()
            default: try reader.skipValue()
            }
        }
        self.init(
            conversationId: try reader.required(conversationId, "conversationId"), userId: try reader.required(userId, "userId"),
            deliveredSeq: deliveredSeq, readSeq: readSeq)
    }
}

extension ReceiptUpdated: JSONReadable {
    public init(json reader: inout JSONReader) throws {
        var conversationId, userId: String?
        var deliveredSeq, readSeq: Int64?
        var memberIds: [String]?
        try reader.readObject { reader, key in
            switch key {
            case "conversationId": conversationId = try reader.readString()
            case "deliveredSeq": deliveredSeq = try reader.readInt64()
            case "memberIds": memberIds = try reader.readStrings()
            case "readSeq": readSeq = try reader.readInt64()
            case "userId": userId = try reader.readString()
            default: try reader.skipValue()
            }
        }
        self.init(
            conversationId: try reader.required(conversationId, "conversationId"), userId: try reader.required(userId, "userId"),
            deliveredSeq: try reader.required(deliveredSeq, "deliveredSeq"), readSeq: try reader.required(readSeq, "readSeq"),
            memberIds: try reader.required(memberIds, "memberIds"))
    }
}
