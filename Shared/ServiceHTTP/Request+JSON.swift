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
        return try await decode(as: type, context: context)
    }
}
