/// Limits shared by the HTTP send path and the websocket path.
public enum MessageLimits {
    public static let maxBodyCharacters = 4000
    public static let maxClientMsgIdCharacters = 64
    public static let maxGroupNameCharacters = 64
    /// WhatsApp's group size, the creator included.
    public static let maxGroupMembers = 1024
    /// The most messages one history request returns.
    public static let maxHistoryPage = 1000

    /// The problems with a send's fields, by field; empty when it is fine.
    public static func problems(clientMsgId: String, body: String) -> [String: String] {
        var problems: [String: String] = [:]
        if clientMsgId.isEmpty || !TextRules.fits(clientMsgId, characters: maxClientMsgIdCharacters) || TextRules.hasControlCharacters(clientMsgId) {
            problems["clientMsgId"] = "1 to \(maxClientMsgIdCharacters) characters, no control characters."
        }
        // Blank is Unicode's White_Space only: the characters Foundation's whitespacesAndNewlines holds.
        if TextRules.hasControlCharacters(body, multiline: true) {
            problems["body"] = "No control characters other than newline and tab."
        } else if body.unicodeScalars.allSatisfy(\.properties.isWhitespace) || !TextRules.fits(body, characters: maxBodyCharacters) {
            problems["body"] = "1 to \(maxBodyCharacters) characters, not only spaces."
        }
        return problems
    }

    /// Whether `id` can be an id (of a conversation, a user…): 1 to 64 characters, no control
    /// characters. Anything else names nothing.
    public static func isPlausibleId(_ id: String) -> Bool {
        !id.isEmpty && TextRules.fits(id, characters: 64) && !TextRules.hasControlCharacters(id)
    }
}
