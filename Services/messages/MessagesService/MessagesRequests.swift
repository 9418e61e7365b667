import Foundation
import ServiceHTTP

struct CreateConversationRequest: APIRequestBody {
    static let fields: Set<String> = ["type", "userId", "name", "memberIds"]
    let type: String
    let userId: String?
    let name: String?
    let memberIds: [String]?
}

struct RenameRequest: APIRequestBody {
    static let fields: Set<String> = ["name"]
    let name: String
}

struct AddMemberRequest: APIRequestBody {
    static let fields: Set<String> = ["userId"]
    let userId: String
}

struct SendMessageRequest: APIRequestBody {
    static let fields: Set<String> = ["clientMsgId", "body"]
    static let multilineFields: Set<String> = ["body"]
    let clientMsgId: String
    let body: String
}

struct ChangeRoleRequest: APIRequestBody {
    static let fields: Set<String> = ["role"]
    let role: String
}
