import Foundation

/// The exchanges of DESIGN.md §4.
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

    public func encoded() throws -> Data {
        try EventCoding.encoder.encode(self)
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

/// RFC 3339 UTC times with millisecond precision, as every SwiftChat time is written.
public enum RFC3339 {
    public static func string(from date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    public static func date(from string: String) -> Date? {
        if let date = try? Date(string, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(string, strategy: .iso8601)
    }
}

/// Time-ordered identifiers (UUIDv7: 48 bits of Unix milliseconds, then randomness), so ids sort by
/// creation time and index well.
public enum EventID {
    public static func make(at date: Date = Date()) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        for index in 0..<6 {
            bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index)))
        }
        // Two draws of 64 random bits, not one per byte (each draw may be a system call).
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        for index in 6..<8 { bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * (index - 6))) }
        for index in 8..<16 { bytes[index] = UInt8(truncatingIfNeeded: low >> (8 * (index - 8))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        return uuid.uuidString.lowercased()
    }
}
