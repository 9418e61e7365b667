import EventContracts
import Foundation

/// A client → server frame (the public contract), decoded by its `type`. Fields a type does not use are
/// ignored; a missing field, or one of the wrong JSON type, makes the frame invalid.
enum ClientFrame: Sendable {
    case send(Send)
    case delivered(Marker)
    case read(Marker)
    case typing(Typing)

    struct Send: Sendable {
        let clientMsgId: String
        let conversationId: String
        let body: String
    }

    struct Marker: Sendable {
        let conversationId: String
        let seq: Int64
    }

    struct Typing: Sendable {
        let conversationId: String
        let typing: Bool
    }

    enum Kind: String, Sendable {
        case send, delivered, read, typing
    }

    /// Why a frame could not be taken, with the `clientMsgId` to echo when the frame had one.
    struct Invalid: Error {
        let code: String
        let message: String
        let clientMsgId: String?
    }

    /// Every field any frame has, read in one pass (by hand: one frame per message sent).
    private struct Fields: JSONReadable {
        let type: String
        let clientMsgId: String?
        let conversationId: String?
        let body: String?
        let seq: Int64?
        let typing: Bool?

        init(json reader: inout JSONReader) throws {
            var type, clientMsgId, conversationId, body: String?
            var seq: Int64?
            var typing: Bool?
            try reader.readObject { reader, key in
                switch key {
                case "type": type = try reader.readString()
                case "clientMsgId": clientMsgId = try reader.readOptional { try $0.readString() }
                case "conversationId": conversationId = try reader.readOptional { try $0.readString() }
                case "body": body = try reader.readOptional { try $0.readString() }
                case "seq": seq = try reader.readOptional { try $0.readInt64() }
                case "typing": typing = try reader.readOptional { try $0.readBool() }
                default: try reader.skipValue()
                }
            }
            (self.clientMsgId, self.conversationId, self.body, self.seq, self.typing) = (clientMsgId, conversationId, body, seq, typing)
            self.type = try reader.required(type, "type")
        }
    }

    private struct Head: Decodable {
        let clientMsgId: String?
    }

    static func decode(_ text: String) throws(Invalid) -> ClientFrame {
        guard let fields = try? Fields(json: text) else {
            let clientMsgId = (try? EventCoding.decoder.decode(Head.self, from: Data(text.utf8)))?.clientMsgId
            throw Invalid(
                code: "invalid_frame", message: "A frame is one JSON object with a string \"type\" and fields of the right types.", clientMsgId: clientMsgId)
        }
        guard let kind = Kind(rawValue: fields.type) else {
            throw Invalid(code: "unknown_type", message: "Unknown frame type.", clientMsgId: fields.clientMsgId)
        }
        switch kind {
        case .send:
            guard let clientMsgId = fields.clientMsgId, let conversationId = fields.conversationId, let body = fields.body else { break }
            return .send(Send(clientMsgId: clientMsgId, conversationId: conversationId, body: body))
        case .delivered, .read:
            guard let conversationId = fields.conversationId, let seq = fields.seq, seq >= 0 else { break }
            let marker = Marker(conversationId: conversationId, seq: seq)
            return kind == .read ? .read(marker) : .delivered(marker)
        case .typing:
            guard let conversationId = fields.conversationId, let typing = fields.typing else { break }
            return .typing(Typing(conversationId: conversationId, typing: typing))
        }
        let needs =
            switch kind {
            case .send: "send needs clientMsgId, conversationId and body."
            case .delivered, .read: "\(kind.rawValue) needs conversationId and a seq of 0 or more."
            case .typing: "typing needs conversationId and a boolean typing."
            }
        throw Invalid(code: "invalid_frame", message: needs, clientMsgId: fields.clientMsgId)
    }
}

/// Server → client frames, encoded once and sent as text.
enum OutboundFrame {
    struct Ack: Encodable {
        let type = "ack"
        let clientMsgId: String
        let message: MessageRecord
    }

    struct Message: Encodable {
        let type = "message"
        let message: MessageRecord
    }

    struct Receipt: Encodable {
        let type = "receipt"
        let conversationId: String
        let userId: String
        let deliveredSeq: Int64
        let readSeq: Int64
    }

    struct Typing: Encodable {
        let type = "typing"
        let conversationId: String
        let userId: String
        let typing: Bool
    }

    struct Conversation: Encodable {
        let type = "conversation"
        let event: ConversationEvent
        let conversation: ConversationSnapshot
    }

    enum ConversationEvent: String, Encodable {
        case created, memberAdded = "member_added", memberRemoved = "member_removed", renamed, roleChanged = "role_changed"
    }
}
