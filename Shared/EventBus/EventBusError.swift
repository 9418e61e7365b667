/// Errors of the event bus: a code to branch on and a description fit for logs.
public struct EventBusError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionLost, channelClosed, confirmTimeout, publishTimeout, nacked, protocolError, poisonMessage }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The broker could not be reached or refused the login.
        public static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke (socket error, broker restart, missed heartbeats).
        public static let connectionLost = Code(.connectionLost)
        /// The broker closed the channel or connection (e.g. a declaration conflicts with an existing one).
        public static let channelClosed = Code(.channelClosed)
        /// Publisher confirms did not arrive in time on a live connection.
        public static let confirmTimeout = Code(.confirmTimeout)
        /// A publish could not be confirmed before its deadline, across reconnects.
        public static let publishTimeout = Code(.publishTimeout)
        /// The broker refused (nacked) a publish, an internal error of its own: retrying may succeed.
        public static let nacked = Code(.nacked)
        /// Something the broker sent that this client cannot handle.
        public static let protocolError = Code(.protocolError)
        /// A delivery that can never be processed; it goes to the dead-letter queue at once.
        public static let poisonMessage = Code(.poisonMessage)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// A handler throws this for a delivery that retrying cannot fix (malformed, unknown version…).
    public static func poison(_ reason: String) -> EventBusError { EventBusError(.poisonMessage, reason) }
}
