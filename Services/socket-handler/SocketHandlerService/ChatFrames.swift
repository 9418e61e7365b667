import EventContracts
import Foundation

/// A client → server frame (DESIGN.md §3). Fields that a type does not use are ignored; a field
/// of the wrong JSON type makes the frame invalid.
struct InboundFrame: Decodable, Sendable {
    let type: String
    let clientMsgId: String?
    let conversationId: String?
    let body: String?
    let seq: Int64?
    let typing: Bool?
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
        let event: String
        let conversation: ConversationSnapshot
    }
}
