import Foundation

/// A value that reads its own JSON: what `EventCoding.decoder` would decode from the same text
/// (unknown members skipped, `null` or an absent member for an optional, RFC 3339 times), without
/// building a tree of boxed values first. The hot path's payloads do this: at 5,000 msg/s
/// `JSONDecoder` took about a fifth of the CPU of socket-handler and notifications, most of it in
/// the live frames, which travel as JSON strings inside JSON and take its slow path for escapes.
/// Tests hold every conforming type to the decoder's result for the same text. Where they differ:
/// it refuses text that is not JSON which the decoder lets pass (a trailing comma, a malformed
/// number in a member it skips), a lone surrogate escape even in a skipped member, and nesting
/// deeper than 64 levels (the decoder's limit is 512); and of a member written twice it keeps the
/// last value, where the decoder keeps the first.
public protocol JSONReadable: Decodable {
    init(json reader: inout JSONReader) throws
}

extension JSONReadable {
    /// Reads one value from the whole of `data` (nothing but white space may follow it).
    public init(json data: Data) throws {
        self = try JSONReader.read(data) { try Self(json: &$0) }
    }

    /// Reads one value from the whole of `text` (nothing but white space may follow it).
    public init(json text: String) throws {
        self = try JSONReader.read(text) { try Self(json: &$0) }
    }
}

/// Reads JSON text from the front, one value at a time; every method skips the white space before
/// its value. Malformed text, a value of the wrong JSON type, or nesting deeper than 64 levels is
/// an `EventDecodingError` naming the byte where it was found.
public struct JSONReader {
    // Valid only inside `read`'s body, which is the only place a reader exists.
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Runs `body` with a reader over `data`; `body` must read exactly one value.
    public static func read<Value>(_ data: Data, _ body: (inout JSONReader) throws -> Value) throws -> Value {
        try data.withUnsafeBytes { raw in try read(raw.bindMemory(to: UInt8.self), body) }
    }

    /// Runs `body` with a reader over the UTF-8 of `text` (a socket's frame, read where it is,
    /// not copied into `Data` first); `body` must read exactly one value.
    public static func read<Value>(_ text: String, _ body: (inout JSONReader) throws -> Value) throws -> Value {
        var text = text
        return try text.withUTF8 { bytes in try read(bytes, body) }
    }

    private static func read<Value>(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (inout JSONReader) throws -> Value) throws -> Value {
        var reader = JSONReader(bytes: bytes)
        // A UTF-8 byte order mark before the value is allowed, as the decoder allows it.
        if reader.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { reader.index = 3 }
        let value = try body(&reader)
        reader.skipWhiteSpace()
        guard reader.index == reader.bytes.count else { throw reader.error("text after the value") }
        return value
    }

    /// An object: `member` is called with each key and must read (or `skipValue`) its value.
    public mutating func readObject(_ member: (inout JSONReader, String) throws -> Void) throws {
        try enter("{")
        defer { depth -= 1 }
        if consumeIf("}") { return }
        repeat {
            let key = try readString()
            try expect(":")
            try member(&self, key)
        } while try separator(closing: "}")
    }

    /// An array, each element read by `element`.
    public mutating func readArray<Element>(_ element: (inout JSONReader) throws -> Element) throws -> [Element] {
        try enter("[")
        defer { depth -= 1 }
        var elements: [Element] = []
        if consumeIf("]") { return elements }
        repeat {
            elements.append(try element(&self))
        } while try separator(closing: "]")
        return elements
    }

    public mutating func readStrings() throws -> [String] {
        try readArray { try $0.readString() }
    }

    /// `null` as nil, anything else as `read` reads it.
    public mutating func readOptional<Value>(_ read: (inout JSONReader) throws -> Value) throws -> Value? {
        skipWhiteSpace()
        if try consumeLiteral("null") { return nil }
        return try read(&self)
    }

    public mutating func readString() throws -> String {
        skipWhiteSpace()
        guard peek == Self.quote else { throw error("a string expected") }
        index += 1
        var unescaped: [UInt8] = []  // only for a string with escapes
        var hasEscapes = false
        var highBits: UInt8 = 0  // any byte ≥ 0x80: not ASCII, so its UTF-8 needs checking
        while true {
            // A run of plain bytes, up to a quote, a backslash or a control character.
            let runStart = index
            while index < bytes.count, case let byte = bytes[index], byte != Self.quote, byte != Self.backslash, byte >= 0x20 {
                highBits |= byte
                index += 1
            }
            guard index < bytes.count else { throw error("an unterminated string") }
            guard bytes[index] >= 0x20 else { throw error("a control character in a string") }
            let run = UnsafeBufferPointer(rebasing: bytes[runStart..<index])
            let isEnd = bytes[index] == Self.quote
            index += 1
            if isEnd && !hasEscapes { return try string(from: run, isASCII: highBits < 0x80) }
            unescaped.append(contentsOf: run)
            if isEnd { return try unescaped.withUnsafeBufferPointer { try string(from: $0, isASCII: highBits < 0x80) } }
            hasEscapes = true
            try appendEscape(to: &unescaped, highBits: &highBits)
        }
    }

    /// An integer; a number written with a fraction or an exponent is taken when it is a whole
    /// number in range (`1.0`, `1e2`), as the decoder takes it.
    public mutating func readInt64() throws -> Int64 {
        skipWhiteSpace()
        let start = index
        let isWhole = try scanNumber()
        let digits = UnsafeBufferPointer(rebasing: bytes[start..<index])
        if !isWhole {
            guard let value = Double(String(decoding: digits, as: UTF8.self)).flatMap(Int64.init(exactly:)) else {
                throw error("an integer expected", at: start)
            }
            return value
        }
        let negative = digits.first == UInt8(ascii: "-")
        var value: Int64 = 0
        for byte in digits.dropFirst(negative ? 1 : 0) {
            let digit = Int64(byte - Self.zero)
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw error("an integer out of range", at: start) }
            value = next
        }
        return value
    }

    public mutating func readInt() throws -> Int {
        let start = index
        guard let value = Int(exactly: try readInt64()) else { throw error("an integer out of range", at: start) }
        return value
    }

    public mutating func readBool() throws -> Bool {
        skipWhiteSpace()
        if try consumeLiteral("true") { return true }
        if try consumeLiteral("false") { return false }
        throw error("true or false expected")
    }

    /// A time, as the RFC 3339 string every SwiftChat time is written as.
    public mutating func readDate() throws -> Date {
        let start = index
        guard let date = RFC3339.date(from: try readString()) else { throw error("an RFC 3339 time expected", at: start) }
        return date
    }

    /// Passes over one value of any kind (a member this reader does not know).
    public mutating func skipValue() throws {
        skipWhiteSpace()
        switch peek {
        case UInt8(ascii: "{"): try readObject { reader, _ in try reader.skipValue() }
        case UInt8(ascii: "["): _ = try readArray { try $0.skipValue() }
        case Self.quote: _ = try readString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try readBool()
        case UInt8(ascii: "n"):
            guard try consumeLiteral("null") else { throw error("a value expected") }
        default: _ = try scanNumber()
        }
    }

    /// A required member's value, read (a member that was absent is an error). Inlinable, so a
    /// reader in another module (a client frame's, once per frame) gets a copy for its own types.
    @inlinable
    public func required<Value>(_ value: Value?, _ key: String) throws -> Value {
        guard let value else { throw missing(key) }
        return value
    }

    /// The error for a required member that was absent.
    @usableFromInline
    func missing(_ key: String) -> EventDecodingError {
        EventDecodingError("malformed JSON: no \"\(key)\" in the object ending before byte \(index)")
    }

    // MARK: - The parts

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let zero = UInt8(ascii: "0")
    private static let nine = UInt8(ascii: "9")

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func error(_ what: String, at position: Int? = nil) -> EventDecodingError {
        EventDecodingError("malformed JSON: \(what) at byte \(position ?? index)")
    }

    private mutating func skipWhiteSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func consumeIf(_ byte: Unicode.Scalar) -> Bool {
        skipWhiteSpace()
        guard peek == UInt8(ascii: byte) else { return false }
        index += 1
        return true
    }

    private mutating func expect(_ byte: Unicode.Scalar) throws {
        guard consumeIf(byte) else { throw error("\"\(byte)\" expected") }
    }

    private mutating func enter(_ opening: Unicode.Scalar) throws {
        guard depth < 64 else { throw error("nesting deeper than 64 levels") }
        try expect(opening)
        depth += 1
    }

    /// After an element: true for a comma (another follows), false for `closing`.
    private mutating func separator(closing: Unicode.Scalar) throws -> Bool {
        if consumeIf(",") { return true }
        try expect(closing)
        return false
    }

    private mutating func consumeLiteral(_ literal: StaticString) throws -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let matches = literal.withUTF8Buffer { expected in (0..<count).allSatisfy { bytes[index + $0] == expected[$0] } }
        guard matches else { return false }
        index += count
        if let next = peek, next >= UInt8(ascii: "a"), next <= UInt8(ascii: "z") { throw error("an unknown literal") }
        return true
    }

    /// Passes over a number as JSON writes one (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`);
    /// true when it has neither a fraction nor an exponent.
    private mutating func scanNumber() throws -> Bool {
        let start = index
        func digits() -> Int {
            let first = index
            while let byte = peek, byte >= Self.zero, byte <= Self.nine { index += 1 }
            return index - first
        }
        if peek == UInt8(ascii: "-") { index += 1 }
        let integerStart = index
        let integerDigits = digits()
        guard integerDigits > 0, integerDigits == 1 || bytes[integerStart] != Self.zero else { throw error("a malformed number", at: start) }
        var isWhole = true
        if peek == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw error("a malformed number", at: start) }
            isWhole = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw error("a malformed number", at: start) }
            isWhole = false
        }
        if let next = peek, (next >= UInt8(ascii: "a") && next <= UInt8(ascii: "z")) || next == UInt8(ascii: ".") {
            throw error("a malformed number", at: start)
        }
        return isWhole
    }

    /// ASCII needs no check (and `String(decoding:)` is the quick way in); anything else must be
    /// valid UTF-8.
    private func string(from utf8: UnsafeBufferPointer<UInt8>, isASCII: Bool) throws -> String {
        if isASCII { return String(decoding: utf8, as: UTF8.self) }
        guard let text = String(validating: utf8, as: UTF8.self) else { throw error("text that is not UTF-8") }
        return text
    }

    /// After a backslash in a string: the character it stands for, as UTF-8.
    private mutating func appendEscape(to utf8: inout [UInt8], highBits: inout UInt8) throws {
        guard let escaped = peek else { throw error("an unterminated string") }
        index += 1
        switch escaped {
        case Self.quote, Self.backslash, UInt8(ascii: "/"): utf8.append(escaped)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "u"):
            let character = try readUnicodeEscape()
            highBits |= character.reduce(0, |)
            utf8.append(contentsOf: character)
        default: throw error("an unknown escape", at: index - 2)
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate the `\uXXXX` of its low one; the
    /// character's UTF-8 bytes.
    private mutating func readUnicodeEscape() throws -> String.UTF8View {
        let start = index - 2
        var unit = try readHex4()
        if (0xD800..<0xDC00).contains(unit) {
            guard index + 2 <= bytes.count, bytes[index] == Self.backslash, bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("a high surrogate without its low one", at: start)
            }
            index += 2
            let low = try readHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("a high surrogate without its low one", at: start) }
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(unit) else { throw error("a lone low surrogate", at: start) }
        return String(Character(scalar)).utf8
    }

    private mutating func readHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("four hex digits expected") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8 =
                switch byte {
                case Self.zero...Self.nine: byte - Self.zero
                case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
                default: throw error("four hex digits expected")
                }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
