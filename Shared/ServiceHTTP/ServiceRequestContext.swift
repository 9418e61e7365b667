import Hummingbird
import NIOCore

/// Who made a request, once the access token is verified.
public struct Identity: Sendable, Equatable {
    public enum Credential: Sendable, Equatable {
        /// The HttpOnly `access_token` cookie (browsers): unsafe requests need an allowed Origin.
        case cookie
        /// `Authorization: Bearer` (non-browser clients).
        case bearer
    }

    public let userId: String
    public let sessionId: String
    public let credential: Credential

    public init(userId: String, sessionId: String, credential: Credential) {
        self.userId = userId
        self.sessionId = sessionId
        self.credential = credential
    }
}

/// A request context that can carry an `Identity`.
public protocol AuthenticatedRequestContext: RequestContext {
    var identity: Identity? { get set }
}

extension AuthenticatedRequestContext {
    /// The identity on a route behind `AuthenticationMiddleware`.
    public func requireIdentity() throws(APIError) -> Identity {
        guard let identity else { throw APIError.unauthenticated() }
        return identity
    }
}

/// The request context of every SwiftChat service: a value type with the caller's identity and a
/// body limit fit for chat payloads.
public struct ServiceRequestContext: AuthenticatedRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// JSON bodies larger than this are refused with 413 before they are decoded.
    public var maxUploadSize: Int { 64 * 1024 }
}
