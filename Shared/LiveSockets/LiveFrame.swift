import EventContracts
import Foundation

/// Server → client frames of the live sockets: one JSON object per text frame, with a `type`,
/// times in the events' RFC 3339 form.
public enum LiveFrame {
    /// The answer to a bad client frame; the socket stays open.
    public struct Error: Encodable, Sendable {
        public let type = "error"
        public let code: String
        public let message: String
        public let clientMsgId: String?
        /// `rate_limited`: how long until the next frame is taken.
        public let retryAfterMs: Int?
    }

    /// A frame that writes its own JSON (the hot path's: acks, messages, receipts). Chosen when
    /// compiling, where the frame's type is known: a cast to find out at run time looked the
    /// conformance up in the runtime's cache for every frame.
    public static func encode(_ frame: some JSONAppendable) -> String {
        String(decoding: frame.jsonBytes, as: UTF8.self)
    }

    public static func encode(_ frame: some Encodable) -> String {
        // Encoding these plain value types cannot fail.
        (try? String(decoding: EventCoding.encoder.encode(frame), as: UTF8.self)) ?? "{}"
    }

    public static func error(_ code: String, _ message: String, clientMsgId: String? = nil, retryAfterMs: Int? = nil) -> String {
        encode(Error(code: code, message: message, clientMsgId: clientMsgId, retryAfterMs: retryAfterMs))
    }
}
