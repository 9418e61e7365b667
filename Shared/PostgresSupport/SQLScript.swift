import Foundation

/// Splits a SQL script into statements at top-level semicolons.
///
/// PostgresNIO runs one statement per query (extended protocol), while a migration file holds
/// several. Semicolons inside string literals (`'…'`, `E'…'`), quoted identifiers, dollar-quoted
/// bodies (`$$…$$`, `$tag$…$tag$`) and comments (`--`, nested `/* */`) do not split.
public enum SQLScript {
    public static func statements(in script: String) -> [String] {
        let bytes = Array(script.utf8)
        var statements: [String] = []
        var start = 0
        var index = 0
        var hasContent = false

        func flush(upTo end: Int) {
            if hasContent {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                statements.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            hasContent = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where next(bytes, index) == UInt8(ascii: "-"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "/") where next(bytes, index) == UInt8(ascii: "*"):
                var depth = 0
                repeat {
                    if bytes[index] == UInt8(ascii: "/"), next(bytes, index) == UInt8(ascii: "*") {
                        depth += 1
                        index += 2
                    } else if bytes[index] == UInt8(ascii: "*"), next(bytes, index) == UInt8(ascii: "/") {
                        depth -= 1
                        index += 2
                    } else {
                        index += 1
                    }
                } while depth > 0 && index < bytes.count
            case UInt8(ascii: "'"):
                hasContent = true
                let escapes = index > 0 && (bytes[index - 1] == UInt8(ascii: "E") || bytes[index - 1] == UInt8(ascii: "e"))
                index = skipQuoted(bytes, from: index, quote: UInt8(ascii: "'"), backslashEscapes: escapes)
            case UInt8(ascii: "\""):
                hasContent = true
                index = skipQuoted(bytes, from: index, quote: UInt8(ascii: "\""), backslashEscapes: false)
            case UInt8(ascii: "$"):
                hasContent = true
                if let tagEnd = dollarTagEnd(bytes, from: index) {
                    let tag = Array(bytes[index...tagEnd])
                    index = tagEnd + 1
                    while index < bytes.count, !bytes[index...].starts(with: tag) { index += 1 }
                    index = min(bytes.count, index + tag.count)
                } else {
                    index += 1
                }
            case UInt8(ascii: ";"):
                flush(upTo: index)
                index += 1
                start = index
            default:
                if !(byte == 32 || byte == 9 || byte == 10 || byte == 13) { hasContent = true }
                index += 1
            }
        }
        flush(upTo: bytes.count)
        return statements
    }

    private static func next(_ bytes: [UInt8], _ index: Int) -> UInt8? {
        index + 1 < bytes.count ? bytes[index + 1] : nil
    }

    /// The index just past a quoted run starting at `from`; a doubled quote stays inside.
    private static func skipQuoted(_ bytes: [UInt8], from: Int, quote: UInt8, backslashEscapes: Bool) -> Int {
        var index = from + 1
        while index < bytes.count {
            if backslashEscapes, bytes[index] == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if bytes[index] == quote {
                if next(bytes, index) == quote {
                    index += 2
                    continue
                }
                return index + 1
            }
            index += 1
        }
        return index
    }

    /// For `$tag$` (tag empty or an identifier) at `from`, the index of its closing `$`; nil for
    /// anything else, such as a `$1` parameter.
    private static func dollarTagEnd(_ bytes: [UInt8], from: Int) -> Int? {
        var index = from + 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "$") { return index }
            let isLetter = (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95 || byte >= 128
            let isDigit = byte >= 48 && byte <= 57
            guard isLetter || (isDigit && index > from + 1) else { return nil }
            index += 1
        }
        return nil
    }
}
