/// What user text may contain (the public contract): no U+0000 and no other control characters (newline
/// and tab only in message bodies), and no name that renders as nothing. Checked at the edge, so
/// nothing a store or a client would choke on gets in.
public enum TextRules {
    /// Whether `text` holds a control character: C0 (U+0000–U+001F), DEL, C1 (U+0080–U+009F), or
    /// a lone surrogate's replacement. `multiline` allows newline and tab (message bodies).
    public static func hasControlCharacters(_ text: String, multiline: Bool = false) -> Bool {
        text.unicodeScalars.contains { scalar in
            switch scalar.value {
            case 0x0A, 0x09: !multiline
            case 0x00...0x1F, 0x7F...0x9F: true
            default: false
            }
        }
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
