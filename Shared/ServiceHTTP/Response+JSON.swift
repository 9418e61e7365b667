import Foundation
import Hummingbird

extension Response {
    /// A JSON response in the API's encoding (RFC 3339 times, sorted keys).
    public static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        json(body: ByteBuffer(bytes: try APIJSON.encoder.encode(value)), status: status)
    }

    /// A JSON response whose text the caller wrote (a history page, written by hand for speed).
    public static func json(encoded bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        json(body: ByteBuffer(bytes: bytes), status: status)
    }

    private static func json(body: ByteBuffer, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }
}
