import Foundation

/// One event as a handler sees it: the typed event and its envelope's id, time and producer. An
/// event that travelled in a batch envelope has the id `<envelope id>#<index>`.
public struct IncomingEvent<Event: Sendable>: Sendable {
    public let id: String
    public let occurredAt: Date
    public let producer: String
    public let event: Event

    public init(id: String, occurredAt: Date, producer: String, event: Event) {
        self.id = id
        self.occurredAt = occurredAt
        self.producer = producer
        self.event = event
    }
}

/// The events one handler takes, as an enum whose cases each wrap one payload type. `cases` says
/// which routing key decodes into which case, so a broker message is decoded once, by its type,
/// into values the handler `switch`es over: no chain of trial decodes.
public protocol EventSet: Sendable {
    static var cases: [EventCase<Self>] { get }
}

/// One case of an `EventSet`: a payload type and how it wraps into the enum.
public struct EventCase<Set: EventSet>: Sendable {
    public let type: String
    public let exchange: EventExchange
    fileprivate let decode: @Sendable (Data) throws -> [IncomingEvent<Set>]

    public init<Payload: EventPayload>(_: Payload.Type, _ wrap: @escaping @Sendable (Payload) -> Set) {
        self.init(wrap) { body in try EventCoding.decoder.decode(WireEnvelope<Payload>.self, from: body) }
    }

    /// A payload that reads its own JSON: its envelope is read by hand too.
    public init<Payload: EventPayload & JSONReadable>(_: Payload.Type, _ wrap: @escaping @Sendable (Payload) -> Set) {
        self.init(wrap) { body in try WireEnvelope<Payload>(json: body) }
    }

    private init<Payload: EventPayload>(_ wrap: @escaping @Sendable (Payload) -> Set, read: @escaping @Sendable (Data) throws -> WireEnvelope<Payload>) {
        self.type = Payload.eventType
        self.exchange = Payload.exchange
        self.decode = { body in
            let wire = try read(body)
            if let payloads = wire.payloads {
                guard wire.count == nil || wire.count == payloads.count else {
                    throw EventDecodingError("the envelope says \(wire.count ?? 0) events but carries \(payloads.count)")
                }
                // By index, not `enumerated()`: this closure runs unspecialized, and an enumerated
                // walk looked up its iterator's metadata in the runtime's caches for every event.
                return payloads.indices.map { index in
                    IncomingEvent(id: "\(wire.id)#\(index)", occurredAt: wire.occurredAt, producer: wire.producer, event: wrap(payloads[index]))
                }
            }
            guard let payload = wire.payload else { throw EventDecodingError("an envelope without payload or payloads") }
            return [IncomingEvent(id: wire.id, occurredAt: wire.occurredAt, producer: wire.producer, event: wrap(payload))]
        }
    }
}

/// Decodes broker messages into one `EventSet`, by type: built once per consumer.
public struct EventDecoder<Set: EventSet>: Sendable {
    private let byType: [String: EventCase<Set>]

    public init(_: Set.Type = Set.self) {
        byType = Dictionary(Set.cases.map { ($0.type, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The event types this set takes, with their exchanges (a consumer's bindings).
    public var types: [(exchange: EventExchange, type: String)] {
        byType.values.map { ($0.exchange, $0.type) }.sorted { $0.type < $1.type }
    }

    /// The events in one broker message (one, or a batch's); nil when its type is not in this set.
    /// `type` is the broker message's type property when it has one (saving a parse of the header).
    public func decode(type: String?, body: Data) throws -> [IncomingEvent<Set>]? {
        let type = try type ?? EventCoding.decoder.decode(EventHeader.self, from: body).type
        guard let eventCase = byType[type] else { return nil }
        return try eventCase.decode(body)
    }
}

/// A broker message that claims a known type but does not hold what that type needs.
public struct EventDecodingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Either envelope form, decoded in one pass: a single `payload`, or `count` `payloads`.
private struct WireEnvelope<Payload: EventPayload>: Decodable {
    let id: String
    let occurredAt: Date
    let producer: String
    let count: Int?
    let payload: Payload?
    let payloads: [Payload]?
}

extension WireEnvelope where Payload: JSONReadable {
    /// The envelope read by hand, members as the decoder takes them (`type` and `version` are the
    /// broker message's business, not read here either).
    init(json body: Data) throws {
        (id, occurredAt, producer, count, payload, payloads) = try JSONReader.read(body) { reader in
            var id, producer: String?
            var occurredAt: Date?
            var count: Int?
            var payload: Payload?
            var payloads: [Payload]?
            try reader.readObject { reader, key in
                switch key {
                case "count": count = try reader.readOptional { try $0.readInt() }
                case "id": id = try reader.readString()
                case "occurredAt": occurredAt = try reader.readDate()
                case "payload": payload = try reader.readOptional { try Payload(json: &$0) }
                case "payloads": payloads = try reader.readOptional { try $0.readArray { try Payload(json: &$0) } }
                case "producer": producer = try reader.readString()
                default: try reader.skipValue()
                }
            }
            return (
                try reader.required(id, "id"), try reader.required(occurredAt, "occurredAt"), try reader.required(producer, "producer"), count, payload,
                payloads
            )
        }
    }
}
