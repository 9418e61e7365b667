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
            try strict.rejectUnknownFields(in: data)
        }
        // Decoded here rather than through `Request.decode`, which flattens DecodingError into a
        // bare 400 and loses which field was wrong.
        return try APIJSON.decoder.decode(type, from: data)
    }
}

/// A request body that names its fields: anything else in the JSON object is a 400
/// `unknown_field`, so a misspelt field is reported instead of silently ignored.
public protocol APIRequestBody: Decodable {
    static var fields: Set<String> { get }
}

extension APIRequestBody {
    static func rejectUnknownFields(in data: Data) throws {
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
    }
}

/// JSON as the public API writes it: RFC 3339 times.
public enum APIJSON {
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
