import Foundation

/// The exchanges of the public contract
public enum EventExchange: String, Sendable, Codable, CaseIterable {
    /// Topic exchange for everything about users: registration, sessions, profiles, presence.
    case userEvents = "UserEvents"
    /// Topic exchange for everything about conversations, messages and receipts.
    case messageEvents = "MessageEvents"
    /// Direct exchange for delivery to one socket-handler instance (routing key = instance id).
    case instanceDelivery = "InstanceDelivery"
    /// Where quorum queues send what exceeded its delivery limit (routing key = `<queue>.dead`).
    case deadLetters = "DeadLetters"

    public var kind: ExchangeKind {
        switch self {
        case .userEvents, .messageEvents: .topic
        case .instanceDelivery, .deadLetters: .direct
        }
    }
}

public enum ExchangeKind: String, Sendable {
    case topic, direct, fanout
}

/// A payload type of one event: its type string is also its routing key.
public protocol EventPayload: Codable, Sendable {
    static var eventType: String { get }
    static var exchange: EventExchange { get }
    /// Bumped on an incompatible change; consumers ignore fields they do not know.
    static var version: Int { get }
}

extension EventPayload {
    public static var version: Int { 1 }
}

/// `{id, type, version, occurredAt, producer, payload}`: the one envelope every event travels in.
public struct EventEnvelope<Payload: EventPayload>: Codable, Sendable {
    public var id: String
    public var type: String
    public var version: Int
    public var occurredAt: Date
    public var producer: String
    public var payload: Payload

    public init(id: String = EventID.make(), occurredAt: Date = Date(), producer: String, payload: Payload) {
        self.id = id
        self.type = Payload.eventType
        self.version = Payload.version
        self.occurredAt = occurredAt
        self.producer = producer
        self.payload = payload
    }

    public var exchange: EventExchange { Payload.exchange }
    public var routingKey: String { type }

    /// The wire form: UTF-8 JSON with RFC 3339 times.
    public func encoded() throws -> Data {
        try EventCoding.encoder.encode(self)
    }
}

/// Several events of one type in one broker message: `{id, type, version, occurredAt, producer,
/// count, payloads}`. The hot path carries its events this way (a window of sends, a stored
/// batch, the frames for one instance), so one broker message and one confirm serve many events.
/// Item `i` is known by the id `<id>#<i>`.
public struct EventBatchEnvelope<Payload: EventPayload>: Codable, Sendable {
    public var id: String
    public var type: String
    public var version: Int
    public var occurredAt: Date
    public var producer: String
    /// How many events this envelope carries.
    public var count: Int
    public var payloads: [Payload]

    public init(id: String = EventID.make(), occurredAt: Date = Date(), producer: String, payloads: [Payload]) {
        self.id = id
        self.type = Payload.eventType
        self.version = Payload.version
        self.occurredAt = occurredAt
        self.producer = producer
        self.count = payloads.count
        self.payloads = payloads
    }

    public var exchange: EventExchange { Payload.exchange }
    public var routingKey: String { type }

    /// The wire form; written by hand when the payloads write their own JSON (`JSONAppendable`).
    public func encoded() throws -> Data {
        if let written = writtenByHand() { return Data(written) }
        return try EventCoding.encoder.encode(self)
    }

    private func writtenByHand() -> [UInt8]? {
        guard let appendable = Payload.self as? any JSONAppendable.Type else { return nil }
        return written(as: appendable)
    }

    /// `Writer` is `Payload`, known to write its own JSON. This runs in generic code (a batcher's),
    /// so the payloads are cast to it one by one (from a type to itself, which costs no lookup) and
    /// walked by index: an existential cast and an enumerated loop per payload looked up
    /// conformances and metadata in the runtime's caches for every event.
    private func written<Writer: JSONAppendable>(as _: Writer.Type) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(192 + payloads.count * 384)
        var object = JSONObjectText()
        object.add("count", count, to: &out)
        object.add("id", id, to: &out)
        object.add("occurredAt", occurredAt, to: &out)
        object.key("payloads", to: &out)
        out.append(UInt8(ascii: "["))
        for index in payloads.indices {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            (payloads[index] as! Writer).appendJSON(to: &out)
        }
        out.append(UInt8(ascii: "]"))
        object.add("producer", producer, to: &out)
        object.add("type", type, to: &out)
        object.add("version", version, to: &out)
        object.end(to: &out)
        return out
    }
}

/// The envelope's fields without the payload: enough to route, deduplicate or skip an event whose
/// type this consumer does not know.
public struct EventHeader: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var version: Int
    public var occurredAt: Date
    public var producer: String
    /// Set when the envelope carries a batch (`payloads`), absent for a single event.
    public var count: Int?

    public init(id: String, type: String, version: Int, occurredAt: Date, producer: String, count: Int? = nil) {
        self.id = id
        self.type = type
        self.version = version
        self.occurredAt = occurredAt
        self.producer = producer
        self.count = count
    }
}

/// An event as received: its header, and the body to decode once the type is known.
public struct ReceivedEvent: Sendable {
    public let header: EventHeader
    public let body: Data

    /// Parses the envelope's header. Malformed JSON or a missing header field is a `DecodingError`.
    public init(body: Data) throws {
        self.header = try EventCoding.decoder.decode(EventHeader.self, from: body)
        self.body = body
    }

    /// Decodes the payload, when the type matches `Payload`; nil for any other type.
    public func decode<Payload: EventPayload>(_: Payload.Type) throws -> EventEnvelope<Payload>? {
        guard header.type == Payload.eventType else { return nil }
        return try EventCoding.decoder.decode(EventEnvelope<Payload>.self, from: body)
    }
}

public enum EventCoding {
    /// Shared: encoding and decoding with a configured coder are safe from many tasks at once, and
    /// making one per event costs more than the event.
    public static let encoder = makeEncoder()
    public static let decoder = makeDecoder()

    /// A fresh encoder of events' format, for a caller that changes its settings.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.string(from: date))
        }
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.date(from: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
            }
            return date
        }
        return decoder
    }
}

/// RFC 3339 UTC times with millisecond precision, as every SwiftChat time is written
/// (`2026-12-01T23:33:05.123Z`). Written and read by hand: a stored message's time is formatted for
/// every frame and event that carries it, and a general-purpose date formatter costs more than
/// the rest of the message's encoding.
public enum RFC3339 {
    public static func string(from date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the 24 bytes of `string(from:)` (JSON written by hand uses this).
    public static func append(_ date: Date, to out: inout [UInt8]) {
        // To the microsecond first (Postgres's precision), so a time that is a whole millisecond
        // but stored a hair below it in binary still writes that millisecond; then truncated.
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let milliseconds = floorDivide(microseconds, 1000).0
        let (days, ofDay) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 24))
        func put(_ value: Int64, _ width: Int, at offset: Int) {
            var value = value
            for index in stride(from: start + offset + width - 1, through: start + offset, by: -1) {
                out[index] = UInt8(truncatingIfNeeded: 48 + value % 10)
                value /= 10
            }
        }
        put(year, 4, at: 0)
        out[start + 4] = 45  // -
        put(month, 2, at: 5)
        out[start + 7] = 45
        put(day, 2, at: 8)
        out[start + 10] = 84  // T
        put(ofDay / 3_600_000, 2, at: 11)
        out[start + 13] = 58  // :
        put(ofDay / 60_000 % 60, 2, at: 14)
        out[start + 16] = 58
        put(ofDay / 1000 % 60, 2, at: 17)
        out[start + 19] = 46  // .
        put(ofDay % 1000, 3, at: 20)
        out[start + 23] = 90  // Z
    }

    public static func date(from string: String) -> Date? {
        if let date = fastDate(Array(string.utf8)) { return date }
        // Anything else RFC 3339 allows (an offset, more or fewer fractional digits).
        if let date = try? Date(string, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(string, strategy: .iso8601)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` or `YYYY-MM-DDTHH:MM:SSZ`; nil for any other form.
    private static func fastDate(_ bytes: [UInt8]) -> Date? {
        guard bytes.count == 24 || bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58,
            bytes.last == 90, bytes.count == 20 || bytes[19] == 46
        else { return nil }
        func number(_ offset: Int, _ width: Int) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[offset..<(offset + width)] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2), (1...12).contains(month), (1...31).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        let millisecond = bytes.count == 24 ? number(20, 3) : 0
        guard let millisecond else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let total = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millisecond
        return Date(timeIntervalSince1970: Double(total) / 1000)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value >= 0 ? value / divisor : (value - divisor + 1) / divisor
        return (quotient, value - quotient * divisor)
    }

    /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
    private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

/// Time-ordered identifiers (UUIDv7: 48 bits of Unix milliseconds, then 12 bits of the millisecond's
/// fraction, then 62 random bits; RFC 9562's method 3), so ids sort by creation time and index
/// well. Made on the hot path (one per stored message), so written out by hand: one draw of
/// randomness (a system call), no `UUID` and no formatting through `printf`.
public enum EventID {
    public static func make(at date: Date = Date()) -> String {
        let time = max(0, date.timeIntervalSince1970 * 1000)
        let milliseconds = UInt64(time)
        let fraction = UInt64((time - Double(milliseconds)) * 4096) & 0xFFF
        var generator = SystemRandomNumberGenerator()
        let random: UInt64 = generator.next()
        let high = milliseconds << 16 | 0x7000 | fraction  // version 7
        let low = random >> 2 | 0x8000_0000_0000_0000  // RFC 9562 variant
        return String(unsafeUninitializedCapacity: 36) { text in
            var position = 0
            func put(_ byte: UInt8) {
                text[position] = byte
                position += 1
            }
            for digit in 0..<32 {
                if digit == 8 || digit == 12 || digit == 16 || digit == 20 { put(UInt8(ascii: "-")) }  // 8-4-4-4-12
                let nibble = UInt8(truncatingIfNeeded: (digit < 16 ? high : low) >> UInt64(60 - 4 * (digit % 16))) & 0xF
                put(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
            }
            return position
        }
    }
}
