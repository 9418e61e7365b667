import EventContracts
import Foundation
import ServiceHTTP
import Testing

@Suite("event contracts: times, envelopes, text rules, history pages")
struct EventContractsTests {
    @Test("RFC 3339 times written and read by hand agree with Foundation's, to the millisecond, and survive a round trip")
    func rfc3339() throws {
        var generator = SystemRandomNumberGenerator()
        let reference = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for _ in 0..<2_000 {
            // Any millisecond from 1900 to 2200, and a time 400 µs into it (where Foundation's
            // truncation and ours cannot differ by a binary rounding).
            let milliseconds = Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &generator)
            let inside = Date(timeIntervalSince1970: Double(milliseconds * 1000 + 400) / 1_000_000)
            #expect(RFC3339.string(from: inside) == inside.formatted(reference), "\(milliseconds)")
            // A whole millisecond writes itself, and reads back to the same text and instant.
            let exact = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let text = RFC3339.string(from: exact)
            #expect(text == RFC3339.string(from: inside))
            let parsed = try #require(RFC3339.date(from: text))
            #expect(parsed == exact, "\(text)")
            #expect(RFC3339.string(from: parsed) == text)
        }
        #expect(RFC3339.date(from: "2026-12-01T23:33:05Z") == Date(timeIntervalSince1970: 1_796_167_985))
        #expect(RFC3339.date(from: "2026-12-01T23:33:05.5+01:00") != nil)  // the general parser
        #expect(RFC3339.date(from: "2026-13-01T23:33:05.123Z") == nil)
        #expect(RFC3339.date(from: "not a time") == nil)
    }

    @Test("event ids are UUIDv7 in the usual text form: the creation millisecond first, version and variant set, ordered by time")
    func eventIDs() throws {
        let start = Date(timeIntervalSince1970: 1_796_167_985.123_4)
        var previous = ""
        var seen: Set<String> = []
        for step in 0..<2_000 {
            let date = start.addingTimeInterval(Double(step) * 0.000_37)
            let id = EventID.make(at: date)
            let uuid = try #require(UUID(uuidString: id), "\(id)")
            #expect(uuid.uuidString.lowercased() == id)
            let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
            let milliseconds = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            #expect(milliseconds == UInt64(date.timeIntervalSince1970 * 1000))
            #expect(bytes[6] >> 4 == 7, "version 7")
            #expect(bytes[8] >> 6 == 0b10, "RFC 9562 variant")
            #expect(id > previous, "ids made later sort later (\(previous), \(id))")
            previous = id
            seen.insert(id)
        }
        let sameInstant = (0..<1_000).map { _ in EventID.make(at: start) }
        #expect(Set(sameInstant).count == 1_000, "the random part tells ids of one instant apart")
        #expect(seen.count == 2_000)
    }

    @Test("a batch envelope decodes into its events, each with its own id; a count that disagrees is refused")
    func batchEnvelope() throws {
        enum Probe: EventSet {
            case added(UserDeleted)
            static let cases = [EventCase(UserDeleted.self, Probe.added)]
        }
        let batch = EventBatchEnvelope(producer: "test", payloads: [UserDeleted(userId: "a"), UserDeleted(userId: "b")])
        let events = try #require(try EventDecoder<Probe>().decode(type: nil, body: try batch.encoded()))
        #expect(events.map(\.id) == ["\(batch.id)#0", "\(batch.id)#1"])
        var forged = try JSONSerialization.jsonObject(with: try batch.encoded()) as! [String: Any]
        forged["count"] = 3
        #expect(throws: (any Error).self) { try EventDecoder<Probe>().decode(type: nil, body: try JSONSerialization.data(withJSONObject: forged)) }
        #expect(try EventDecoder<Probe>().decode(type: "something.else", body: Data("{}".utf8)) == nil)
    }

    @Test("text rules: control characters, and names that render as nothing")
    func textRules() {
        #expect(TextRules.hasControlCharacters("a\u{0}b"))
        #expect(TextRules.hasControlCharacters("a\u{85}b"))
        #expect(!TextRules.hasControlCharacters("two\nlines\tok", multiline: true))
        #expect(TextRules.hasControlCharacters("two\nlines"))
        // Read as UTF-8: every C0, DEL and C1 scalar is found, and nothing next to them.
        for scalar in (0...0x2FF).compactMap(Unicode.Scalar.init) {
            let text = "a\(Character(scalar))b"
            let isControl = scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
            #expect(TextRules.hasControlCharacters(text) == isControl, "U+\(String(scalar.value, radix: 16))")
            #expect(TextRules.hasControlCharacters(text, multiline: true) == (isControl && scalar != "\n" && scalar != "\t"))
        }
        for invisible in ["", "  ", "\u{3164}", "\u{200B}\u{200D}", "\u{115F}\u{1160}", "\u{2800}", "\u{301}", "\u{FEFF}"] {
            #expect(TextRules.rendersAsNothing(invisible), "\(invisible.unicodeScalars.map(\.value))")
        }
        for visible in ["a", "✨", "\u{3164}A", "日本"] { #expect(!TextRules.rendersAsNothing(visible)) }
    }

    @Test("a send's limits count characters, not bytes, and refuse a body of white space of any kind")
    func sendLimits() {
        #expect(MessageLimits.problems(clientMsgId: "c1", body: "hi").isEmpty)
        #expect(MessageLimits.problems(clientMsgId: String(repeating: "日", count: 64), body: String(repeating: "é", count: 4000)).isEmpty)
        #expect(MessageLimits.problems(clientMsgId: String(repeating: "日", count: 65), body: "hi").keys.sorted() == ["clientMsgId"])
        #expect(MessageLimits.problems(clientMsgId: "c1", body: String(repeating: "é", count: 4001)).keys.sorted() == ["body"])
        for blank in ["", " ", "\n\t ", "\u{A0}\u{3000}\u{2028}\u{2029}\u{202F}", "\u{1680}\u{2000}\u{200A}\u{205F}"] {
            #expect(MessageLimits.problems(clientMsgId: "c1", body: blank).keys.sorted() == ["body"], "\(blank.unicodeScalars.map(\.value))")
        }
        #expect(MessageLimits.problems(clientMsgId: "c1", body: " \u{3000}x").isEmpty)
        #expect(MessageLimits.isPlausibleId(String(repeating: "日", count: 64)))
        #expect(!MessageLimits.isPlausibleId(String(repeating: "a", count: 65)))
    }

    @Test("a history page written by hand is the JSON the API encoder writes: byte for byte for plain text, the same values for any text")
    func historyPageJSON() throws {
        func record(_ k: Int, body: String) -> MessageRecord {
            MessageRecord(
                id: "01a2\(k)", conversationId: "c/\(k)", seq: Int64(k) * 7_000_000_001, senderId: "u\"\(k)", clientMsgId: "m\\\(k)",
                body: body, sentAt: Date(timeIntervalSince1970: Double(1_796_167_985_123 + k * 1_001) / 1000))
        }
        let plain = (0..<50).map { record($0, body: "message number \($0): a few words, \"quoted\", C:\\path, 日本 ✨ </script>") }
        #expect(MessageRecord.json(plain, under: "messages") == Array(try APIJSON.encoder.encode(["messages": plain])))
        #expect(MessageRecord.json([], under: "messages") == Array(try APIJSON.encoder.encode(["messages": [MessageRecord]()])))

        let awkward = ["two\nlines\tand\r", "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}", "\u{2028}\u{2029}", "\\\"\\", "", "é\u{301}🇳🇱"]
        let records = awkward.enumerated().map { record($0.offset, body: $0.element) }
        let written = Data(MessageRecord.json(records, under: "messages"))
        #expect(try APIJSON.decoder.decode([String: [MessageRecord]].self, from: written) == ["messages": records])
        let reference = try JSONSerialization.jsonObject(with: try APIJSON.encoder.encode(["messages": records])) as? NSDictionary
        #expect(try JSONSerialization.jsonObject(with: written) as? NSDictionary == reference)
    }

    @Test("the hot path's payloads and batch envelopes written by hand are the encoder's JSON: byte for byte for plain text, the same values for any text")
    func payloadsWrittenByHand() throws {
        // The events' encoder, except that `/` is not escaped (the only difference of the hand-written form).
        let reference = EventCoding.makeEncoder()
        reference.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func expectSame<Value: JSONAppendable & Equatable & Decodable>(_ value: Value, plain: Bool, _ note: String = "") throws {
            let written = value.jsonBytes
            if plain { #expect(written == Array(try reference.encode(value)), "\(Value.self) \(note)") }
            #expect(try EventCoding.decoder.decode(Value.self, from: Data(written)) == value, "\(Value.self) \(note)")
        }
        func record(_ k: Int, body: String) -> MessageRecord {
            MessageRecord(
                id: "01a2\(k)", conversationId: "c/\(k)", seq: Int64(k) * 7_000_000_001, senderId: "u\"\(k)", clientMsgId: "m\\\(k)",
                body: body, sentAt: Date(timeIntervalSince1970: Double(1_796_167_985_123 + k * 1_001) / 1000))
        }
        let plain = ["a few words, \"quoted\", C:\\path, 日本 ✨ </script>", "", "{\"type\":\"message\"}"]
        let awkward = ["two\nlines\tand\r", "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}", "\u{2028}\u{2029}", "é\u{301}🇳🇱"]
        for (texts, isPlain) in [(plain, true), (awkward, false)] {
            for (k, text) in texts.enumerated() {
                let message = record(k, body: text)
                try expectSame(MessageSent(senderId: "u\(k)", clientMsgId: text, conversationId: "c/\(k)", body: text, instanceId: "i-\(k)"), plain: isPlain)
                try expectSame(MessageStored(message: message, memberIds: ["u\(k)", text], senderInstance: "i/\(k)"), plain: isPlain)
                try expectSame(MessageStored(message: message, memberIds: [], senderInstance: nil), plain: isPlain)
                let ack = LiveAck(senderId: "u\(k)", clientMsgId: text, frame: #"{"type":"ack","text":"\#(text)"}"#)
                try expectSame(LiveDelivery(recipients: ["a", text], frame: #"{"body":"\#(text)"}"#, ack: ack), plain: isPlain)
                try expectSame(LiveDelivery(recipients: [], frame: text, ack: nil), plain: isPlain)
                let preview = MessagePreview(message)
                try expectSame(preview, plain: isPlain)
                try expectSame(
                    NotificationPayload(conversationId: "c", conversationType: "group", conversationName: text, count: 3, lastMessage: preview), plain: isPlain)
                try expectSame(NotificationPayload(actorId: text, sessionId: "s\(k)"), plain: isPlain)
                try expectSame(ReceiptMarked(conversationId: text, userId: "u/\(k)", deliveredSeq: Int64(k) << 40, readSeq: nil), plain: isPlain)
                try expectSame(ReceiptMarked(conversationId: "c", userId: text, deliveredSeq: nil, readSeq: Int64(k)), plain: isPlain)
                try expectSame(
                    ReceiptUpdated(conversationId: text, userId: "u", deliveredSeq: Int64(k) * 9, readSeq: Int64(k), memberIds: [text, "v"]), plain: isPlain)
            }
        }
        try expectSame(NotificationPayload(), plain: true, "with no members")

        // Every property is written: one added to a type later without its hand-written member fails here.
        func expectEveryProperty<Value: JSONAppendable>(_ value: Value) throws {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(value.jsonBytes)) as? [String: Any])
            #expect(Set(object.keys) == Set(Mirror(reflecting: value).children.compactMap(\.label)), "\(Value.self)")
        }
        let message = record(1, body: "hello")
        let ack = LiveAck(senderId: "u", clientMsgId: "m", frame: "{}")
        try expectEveryProperty(message)
        try expectEveryProperty(MessageSent(senderId: "u", clientMsgId: "m", conversationId: "c", body: "b", instanceId: "i"))
        try expectEveryProperty(MessageStored(message: message, memberIds: ["u"], senderInstance: "i"))
        try expectEveryProperty(LiveDelivery(recipients: ["u"], frame: "{}", ack: ack))
        try expectEveryProperty(ack)
        try expectEveryProperty(MessagePreview(message))
        try expectEveryProperty(ReceiptMarked(conversationId: "c", userId: "u", deliveredSeq: 1, readSeq: 2))
        try expectEveryProperty(ReceiptUpdated(conversationId: "c", userId: "u", deliveredSeq: 1, readSeq: 2, memberIds: ["u"]))
        try expectEveryProperty(
            NotificationPayload(
                conversationId: "c", conversationType: "group", conversationName: "n", count: 1, lastMessage: MessagePreview(message), actorId: "a",
                sessionId: "s"))

        // A batch envelope of payloads that write themselves is written by hand too.
        let stored = (0..<3).map { MessageStored(message: record($0, body: plain[$0]), memberIds: ["a", "b/\($0)"], senderInstance: $0 == 1 ? nil : "i") }
        let envelope = EventBatchEnvelope(id: "01ENV/1", occurredAt: Date(timeIntervalSince1970: 1_796_167_985.5), producer: "messages", payloads: stored)
        #expect(Array(try envelope.encoded()) == Array(try reference.encode(envelope)))
        let decoded = try EventCoding.decoder.decode(EventBatchEnvelope<MessageStored>.self, from: try envelope.encoded())
        #expect(decoded.payloads == stored && decoded.count == 3 && decoded.id == envelope.id)
        let envelopeObject = try #require(try JSONSerialization.jsonObject(with: try envelope.encoded()) as? [String: Any])
        #expect(Set(envelopeObject.keys) == Set(Mirror(reflecting: envelope).children.compactMap(\.label)))
    }

    @Test("payloads read by hand get what the decoder gets from the same text: any text, white space, members they do not know; bad text is refused")
    func payloadsReadByHand() throws {
        func record(_ k: Int, body: String) -> MessageRecord {
            MessageRecord(
                id: "01a2\(k)", conversationId: "c/\(k)", seq: Int64(k) * 7_000_000_001 - 3, senderId: "u\"\(k)", clientMsgId: "m\\\(k)",
                body: body, sentAt: Date(timeIntervalSince1970: Double(1_796_167_985_123 + k * 1_001) / 1000))
        }
        let pretty = EventCoding.makeEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys]
        // The same value from the encoder's text (slashes escaped), the hand-written text, the
        // pretty-printed text, and with members the type does not know put in.
        func expectRead<Value: JSONReadable & JSONAppendable & Equatable>(_ value: Value) throws {
            let parsed = try JSONSerialization.jsonObject(with: try EventCoding.encoder.encode(value)) as? [String: Any]
            var object = try #require(parsed)
            object["zExtra"] = ["a": [1, 2.5e3, -0.5, ["b": NSNull(), "c": true]], "d": "\u{1F600}\\"] as [String: Any]
            object["aExtra"] = [[[], [:]]] as [Any]
            let texts = [
                try EventCoding.encoder.encode(value), Data(value.jsonBytes), try pretty.encode(value),
                try JSONSerialization.data(withJSONObject: object),
            ]
            for text in texts {
                #expect(try Value(json: text) == value, "\(Value.self) from \(String(decoding: text, as: UTF8.self))")
                #expect(try Value(json: String(decoding: text, as: UTF8.self)) == value, "\(Value.self) from a string")
                #expect(try EventCoding.decoder.decode(Value.self, from: text) == value)
            }
        }
        let texts = [
            "a few words, \"quoted\", C:\\path, 日本 ✨ </script>", "", "{\"type\":\"message\"}", "two\nlines\tand\r",
            "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}", "\u{2028}\u{2029}", "é\u{301}🇳🇱",
        ]
        for (k, text) in texts.enumerated() {
            let message = record(k, body: text)
            try expectRead(message)
            try expectRead(MessageSent(senderId: "u\(k)", clientMsgId: text, conversationId: "c/\(k)", body: text, instanceId: "i-\(k)"))
            try expectRead(MessageStored(message: message, memberIds: ["u\(k)", text], senderInstance: "i/\(k)"))
            try expectRead(MessageStored(message: message, memberIds: [], senderInstance: nil))
            let ack = LiveAck(senderId: "u\(k)", clientMsgId: text, frame: String(decoding: OutboundProbe(text: text).jsonBytes, as: UTF8.self))
            try expectRead(LiveDelivery(recipients: ["a", text], frame: #"{"body":"\#(text)"}"#, ack: ack))
            try expectRead(LiveDelivery(recipients: [], frame: text, ack: nil))
            try expectRead(ReceiptMarked(conversationId: text, userId: "u/\(k)", deliveredSeq: Int64(k) << 40, readSeq: nil))
            try expectRead(ReceiptMarked(conversationId: "c", userId: text, deliveredSeq: nil, readSeq: -Int64(k)))
            try expectRead(ReceiptUpdated(conversationId: text, userId: "u", deliveredSeq: .max - Int64(k), readSeq: .min + Int64(k), memberIds: [text, "v"]))
        }

        // Escapes any writer may use, and an optional member written as null.
        let escaped = #"{"senderId":"\u0075\/1","clientMsgId":"\ud83c\uddf3\ud83c\uddf1","frame":"\"\\\b\f\n\r\t\u00e9\u0000"}"#
        let ack = try LiveAck(json: Data(escaped.utf8))
        #expect(ack == (try EventCoding.decoder.decode(LiveAck.self, from: Data(escaped.utf8))))
        #expect(ack == LiveAck(senderId: "u/1", clientMsgId: "🇳🇱", frame: "\"\\\u{8}\u{C}\n\r\té\u{0}"))
        let withNull = #"{"recipients":["a"],"frame":"{}","ack":null}"#
        #expect(try LiveDelivery(json: Data(withNull.utf8)) == LiveDelivery(recipients: ["a"], frame: "{}", ack: nil))

        // Bad text is an error, never a crash or a guess; the decoder refuses each one too.
        let valid = #"{"clientMsgId":"m","frame":"{}","senderId":"u"}"#
        var bad = [
            "", " ", "{", "[]", "null", #"{"clientMsgId":"m","frame":"{}"}"#, #"{"clientMsgId":"m","frame":"{}","senderId":null}"#,
            #"{"clientMsgId":"m","frame":{},"senderId":"u"}"#, #"{"clientMsgId":1,"frame":"{}","senderId":"u"}"#, valid + " x", valid + "}",
            #"{"clientMsgId":"m","frame":"\x","senderId":"u"}"#, #"{"clientMsgId":"\ud800","frame":"{}","senderId":"u"}"#,
            #"{"clientMsgId":"\udc00x","frame":"{}","senderId":"u"}"#, #"{"clientMsgId":"\u12","frame":"{}","senderId":"u"}"#,
            "{\"clientMsgId\":\"a\u{1}b\",\"frame\":\"{}\",\"senderId\":\"u\"}", #"{"clientMsgId":"m","frame":"{}","senderId":"u""#,
            #"{"clientMsgId":"m" "frame":"{}","senderId":"u"}"#, #"{"clientMsgId":"m","frame":"{}","senderId":"u","x":tru}"#,
        ].map { Data($0.utf8) }
        bad.append(Data(#"{"clientMsgId":""#.utf8) + Data([0xC3, 0x28]) + Data(#"","frame":"{}","senderId":"u"}"#.utf8))
        for text in bad {
            #expect(throws: EventDecodingError.self, "\(String(decoding: text, as: UTF8.self))") { try LiveAck(json: text) }
            #expect(throws: (any Error).self) { try EventCoding.decoder.decode(LiveAck.self, from: text) }
            // A socket's frame is read from its string: the same text is refused the same way.
            if let string = String(validating: text, as: UTF8.self) {
                #expect(throws: EventDecodingError.self, "\(string)") { try LiveAck(json: string) }
            }
        }
        // Stricter than the decoder, which lets a trailing comma or a malformed number pass.
        for text in [",}", #","x":01.e}"#, #","x":-}"#, #","x":[1,]}"#] {
            #expect(throws: EventDecodingError.self, "\(text)") { try LiveAck(json: Data((valid.dropLast() + text).utf8)) }
        }
        // Numbers as the decoder takes them: a whole number with a fraction or exponent, not a leading zero.
        for (text, value) in [("7", 7), ("-0", 0), ("7.0", 7), ("7e0", 7), ("0.07e2", 7), ("-9223372036854775808", Int64.min)] as [(String, Int64)] {
            let json = Data(#"{"conversationId":"c","deliveredSeq":\#(text),"userId":"u"}"#.utf8)
            #expect(try ReceiptMarked(json: json).deliveredSeq == value, "\(text)")
            #expect(try EventCoding.decoder.decode(ReceiptMarked.self, from: json).deliveredSeq == value, "\(text)")
        }
        for text in ["007", "7.5", "1e400", "7.", ".7", "+7", "7e", "0x7"] {
            let json = Data(#"{"conversationId":"c","deliveredSeq":\#(text),"userId":"u"}"#.utf8)
            #expect(throws: EventDecodingError.self, "\(text)") { try ReceiptMarked(json: json) }
        }
        // A byte order mark before the value, as the decoder allows.
        #expect(try LiveAck(json: Data([0xEF, 0xBB, 0xBF]) + Data(valid.utf8)) == LiveAck(senderId: "u", clientMsgId: "m", frame: "{}"))
        #expect(try LiveAck(json: "\u{FEFF}" + valid) == LiveAck(senderId: "u", clientMsgId: "m", frame: "{}"))
        let outOfRange = #"{"conversationId":"c","deliveredSeq":9223372036854775808,"userId":"u"}"#
        #expect(throws: EventDecodingError.self) { try ReceiptMarked(json: Data(outOfRange.utf8)) }
        let deep = #"{"clientMsgId":"m","frame":"{}","senderId":"u","x":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}"
        #expect(throws: EventDecodingError.self) { try LiveAck(json: Data(deep.utf8)) }

        // Envelopes of payloads that read themselves are read by hand: a batch, and a single event.
        enum Probe: EventSet {
            case stored(MessageStored)
            static let cases = [EventCase(MessageStored.self, Probe.stored)]
        }
        let stored = (0..<3).map { MessageStored(message: record($0, body: texts[$0]), memberIds: ["a", "b/\($0)"], senderInstance: $0 == 1 ? nil : "i") }
        let batch = EventBatchEnvelope(id: "01ENV/1", occurredAt: Date(timeIntervalSince1970: 1_796_167_985.5), producer: "messages", payloads: stored)
        let events = try #require(try EventDecoder<Probe>().decode(type: nil, body: try batch.encoded()))
        #expect(events.map(\.id) == ["01ENV/1#0", "01ENV/1#1", "01ENV/1#2"])
        #expect(events.allSatisfy { $0.producer == "messages" && $0.occurredAt == batch.occurredAt })
        #expect(
            events.map { event -> MessageStored in
                switch event.event {
                case .stored(let payload): payload
                }
            } == stored)
        let single = EventEnvelope(id: "01ONE", producer: "messages", payload: stored[1])
        let one = try #require(try EventDecoder<Probe>().decode(type: "message.stored", body: try single.encoded()))
        #expect(one.map(\.id) == ["01ONE"])
        #expect(
            one.map { event -> MessageStored in
                switch event.event {
                case .stored(let payload): payload
                }
            } == [stored[1]])
        var forged = try #require(try JSONSerialization.jsonObject(with: try batch.encoded()) as? [String: Any])
        forged["count"] = 2
        #expect(throws: EventDecodingError.self) { try EventDecoder<Probe>().decode(type: nil, body: try JSONSerialization.data(withJSONObject: forged)) }
        forged["count"] = nil
        forged["payloads"] = nil
        #expect(throws: EventDecodingError.self) { try EventDecoder<Probe>().decode(type: nil, body: try JSONSerialization.data(withJSONObject: forged)) }
    }
}

/// A frame-like object for the tests: JSON with quotes and escapes, to carry inside a string.
private struct OutboundProbe: JSONAppendable {
    let type = "message"
    let text: String

    func appendJSON(to out: inout [UInt8]) {
        var object = JSONObjectText()
        object.add("text", text, to: &out)
        object.add("type", type, to: &out)
        object.end(to: &out)
    }
}
