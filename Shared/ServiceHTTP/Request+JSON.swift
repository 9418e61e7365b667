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
        // Decoded here rather than through `Request.decode`, which flattens DecodingError into a
        // bare 400 and loses which field was wrong.
        return try APIJSON.decoder.decode(type, from: Data(buffer.readableBytesView))
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
