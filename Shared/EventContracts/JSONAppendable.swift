import Foundation

/// A value that writes its own JSON: the text `EventCoding.encoder` writes for it (keys sorted,
/// RFC 3339 times), except that `/` is not escaped. The hot path's payloads and frames do this:
/// at 5,000 msg/s `JSONEncoder` took about a fifth of the CPU of socket-handler and messages,
/// building a tree of boxed values for every event before writing a byte. Tests hold every
/// conforming type to the encoder's output; a type that does not conform is encoded as before.
public protocol JSONAppendable: Encodable {
    func appendJSON(to out: inout [UInt8])
}

extension JSONAppendable {
    /// The JSON text as bytes.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        appendJSON(to: &out)
        return out
    }
}

/// The pieces of JSON written by hand: strings, arrays of strings, integers, times.
public enum JSONText {
    /// `text` as a quoted JSON string: `"` and `\` escaped, control characters as `\n`, `\t`,
    /// `\r`, `\b`, `\f` or `\u00XX`; everything else (UTF-8, `/`) as it is.
    public static func append(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            // Runs of plain bytes are copied whole; a frame carried as a string has a quote every few bytes.
            var runStart = 0
            for index in utf8.indices where needsEscape(utf8[index]) {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                appendEscaped(utf8[index], to: &out)
                runStart = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscaped(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
        case 0x0A: out.append(UInt8(ascii: "n"))
        case 0x09: out.append(UInt8(ascii: "t"))
        case 0x0D: out.append(UInt8(ascii: "r"))
        case 0x08: out.append(UInt8(ascii: "b"))
        case 0x0C: out.append(UInt8(ascii: "f"))
        default:
            out.append(contentsOf: "u00".utf8)
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// `texts` as a JSON array of strings.
    public static func append(_ texts: [String], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, text) in texts.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            append(text, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// An integer's decimal digits.
    public static func append(_ number: some BinaryInteger, to out: inout [UInt8]) {
        out.append(contentsOf: String(number).utf8)
    }

    /// A time as its quoted RFC 3339 string.
    public static func append(_ date: Date, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        RFC3339.append(date, to: &out)
        out.append(UInt8(ascii: "\""))
    }
}

/// One JSON object, written member by member: members in sorted key order (as the encoder writes
/// them), a nil value left out (as the encoder does), then `end`.
public struct JSONObjectText {
    private var opened = false

    public init() {}

    public mutating func add(_ key: StaticString, _ value: String?, to out: inout [UInt8]) {
        guard let value else { return }
        self.key(key, to: &out)
        JSONText.append(value, to: &out)
    }

    public mutating func add(_ key: StaticString, _ values: [String]?, to out: inout [UInt8]) {
        guard let values else { return }
        self.key(key, to: &out)
        JSONText.append(values, to: &out)
    }

    public mutating func add(_ key: StaticString, _ number: (some BinaryInteger)?, to out: inout [UInt8]) {
        guard let number else { return }
        self.key(key, to: &out)
        JSONText.append(number, to: &out)
    }

    public mutating func add(_ key: StaticString, _ date: Date?, to out: inout [UInt8]) {
        guard let date else { return }
        self.key(key, to: &out)
        JSONText.append(date, to: &out)
    }

    public mutating func add(_ key: StaticString, _ value: (some JSONAppendable)?, to out: inout [UInt8]) {
        guard let value else { return }
        self.key(key, to: &out)
        value.appendJSON(to: &out)
    }

    /// A member's key, `"key":`; the caller writes its value (one the `add`s do not cover).
    public mutating func key(_ key: StaticString, to out: inout [UInt8]) {
        out.append(UInt8(ascii: opened ? "," : "{"))
        opened = true
        out.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: #"":"#.utf8)
    }

    public mutating func end(to out: inout [UInt8]) {
        if !opened { out.append(UInt8(ascii: "{")) }
        opened = true
        out.append(UInt8(ascii: "}"))
    }
}
