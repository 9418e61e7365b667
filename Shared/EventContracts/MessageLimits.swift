import Foundation

/// Limits shared by the HTTP send path and the websocket path.
public enum MessageLimits {
    public static let maxBodyCharacters = 4000
    public static let maxClientMsgIdCharacters = 64
    public static let maxGroupNameCharacters = 64
    public static let maxGroupMembers = 256

    /// A problem with a send's fields, or nil when it is fine.
    public static func problems(clientMsgId: String, body: String) -> [String: String] {
        var problems: [String: String] = [:]
        if clientMsgId.isEmpty || clientMsgId.count > maxClientMsgIdCharacters { problems["clientMsgId"] = "1 to \(maxClientMsgIdCharacters) characters." }
        if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || body.count > maxBodyCharacters { problems["body"] = "1 to \(maxBodyCharacters) characters, not only spaces." }
        return problems
    }
}
