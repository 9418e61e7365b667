import EventContracts
import Foundation
import Hummingbird

extension Request {
    /// Decodes a JSON body: 415 without `Content-Type: application/json`, 413 past the context's
    /// `maxUploadSize`, 400 `invalid_body` naming the field when it does not decode.
    public func decodeJSON<Value: Decodable>(as type: Value.Type, context: some RequestContext) async throws -> Value {
        guard let contentType = headers[.contentType],
            let mediaType = MediaType(from: contentType), mediaType.isType(.applicationJson)
        else {
            throw APIError.unsupportedMediaType
        }
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer.readableBytesView)
        if let strict = type as? any APIRequestBody.Type {
            try strict.check(data)
        }
        // Decoded here rather than through `Request.decode`, which flattens DecodingError into a
        // bare 400 and loses which field was wrong.
        return try APIJSON.decoder.decode(type, from: data)
    }
}

/// A request body that names its fields: anything else in the JSON object is a 400
/// `unknown_field`, so a misspelt field is reported instead of silently ignored. No string in it
/// may hold a control character (400 `validation_failed` naming the field), except newline and tab
/// in `multilineFields`.
public protocol APIRequestBody: Decodable {
    static var fields: Set<String> { get }
    static var multilineFields: Set<String> { get }
}

extension APIRequestBody {
    public static var multilineFields: Set<String> { [] }

    static func check(_ data: Data) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            if (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil {
                throw APIError.badRequest("invalid_body", "The body must be a JSON object.")
            }
            throw APIError.badRequest("invalid_body", "The body is not valid JSON.")
        }
        let unknown = Set(object.keys).subtracting(fields)
        guard unknown.isEmpty else {
            throw APIError(
                .badRequest, code: "unknown_field", message: "Unknown field(s): \(unknown.sorted().joined(separator: ", ")).",
                fields: Dictionary(uniqueKeysWithValues: unknown.map { ($0, "not a field of this request") })
            )
        }
        var problems: [String: String] = [:]
        for (field, value) in object where containsControlCharacters(value, multiline: multilineFields.contains(field)) {
            problems[field] = multilineFields.contains(field) ? "No control characters other than newline and tab." : "No control characters."
        }
        guard problems.isEmpty else { throw APIError.validation(problems) }
    }

    private static func containsControlCharacters(_ value: Any, multiline: Bool) -> Bool {
        switch value {
        case let text as String: TextRules.hasControlCharacters(text, multiline: multiline)
        case let list as [Any]: list.contains { containsControlCharacters($0, multiline: multiline) }
        case let object as [String: Any]:
            object.contains { TextRules.hasControlCharacters($0.key) || containsControlCharacters($0.value, multiline: multiline) }
        default: false
        }
    }
}

/// JSON as the public API writes it: RFC 3339 UTC times with milliseconds, as on the websockets
/// and in events.
public enum APIJSON {
    public static let decoder = EventCoding.decoder

    public static let encoder: JSONEncoder = {
        let encoder = EventCoding.makeEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
