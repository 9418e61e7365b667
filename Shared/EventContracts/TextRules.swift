/// What user text may contain (the public contract): no U+0000 and no other control characters (newline
/// and tab only in message bodies), and no name that renders as nothing. Checked at the edge, so
/// nothing a store or a client would choke on gets in.
public enum TextRules {
    /// Whether `text` holds a control character: C0 (U+0000–U+001F), DEL or C1 (U+0080–U+009F).
    /// `multiline` allows newline and tab (message bodies). Read as UTF-8 bytes, once per send on
    /// the hot path: C0 and DEL are single bytes, and C1 is 0xC2 followed by 0x80–0x9F.
    public static func hasControlCharacters(_ text: String, multiline: Bool = false) -> Bool {
        var afterC2 = false
        for byte in text.utf8 {
            if afterC2, byte <= 0x9F { return true }  // a continuation byte here is ≥ 0x80
            afterC2 = byte == 0xC2
            switch byte {
            case 0x0A, 0x09: if !multiline { return true }
            case 0x00...0x1F, 0x7F: return true
            default: break
            }
        }
        return false
    }

    /// Whether `text` has at most `limit` characters, counting them only when its UTF-8 is longer
    /// than that (a character is at least one byte).
    public static func fits(_ text: String, characters limit: Int) -> Bool {
        text.utf8.count <= limit || text.count <= limit
    }

    /// Whether `name` would render as nothing: only whitespace, zero-width characters, invisible
    /// fillers (Hangul fillers such as U+3164, the Braille blank) or marks without a base.
    public static func rendersAsNothing(_ name: String) -> Bool {
        name.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isWhitespace || scalar.properties.isDefaultIgnorableCodePoint || invisible.contains(scalar.value)
                || scalar.properties.generalCategory == .nonspacingMark || scalar.properties.generalCategory == .enclosingMark
                || scalar.properties.generalCategory == .format
        }
    }

    /// Characters that draw nothing but are neither whitespace nor default-ignorable.
    private static let invisible: Set<UInt32> = [
        0x115F, 0x1160, 0x3164, 0xFFA0,  // Hangul fillers
        0x2800,  // Braille pattern blank
        0x180E,  // Mongolian vowel separator
        0x034F,  // combining grapheme joiner
    ]

    /// The problem with a display or group name, or nil: 1 to `maxCharacters` characters, no
    /// control characters, and something visible.
    public static func nameProblem(_ name: String, maxCharacters: Int) -> String? {
        if hasControlCharacters(name) { return "No control characters." }
        if name.isEmpty || name.count > maxCharacters || rendersAsNothing(name) {
            return "1 to \(maxCharacters) characters, and something visible."
        }
        return nil
    }
}
