import ServiceConfig

/// auth's own settings, beyond what every service has.
public struct AuthConfiguration: Sendable {
    /// PEM of the ES256 private key that signs access tokens.
    public var privateKeyPEM: String
    public var accessTokenLifetime: Duration
    public var refreshTokenLifetime: Duration
    /// `Secure` on cookies: on by default, off only for plain-http loopback (`COOKIE_SECURE=false`).
    public var secureCookies: Bool
    public var bcryptCost: UInt8
    /// Failed sign-ins allowed per account, and per client address, within `failureWindow`.
    public var maxFailuresPerAccount: Int
    public var maxFailuresPerAddress: Int
    public var failureWindow: Duration

    public init(
        privateKeyPEM: String,
        accessTokenLifetime: Duration = .seconds(15 * 60),
        refreshTokenLifetime: Duration = .seconds(30 * 86_400),
        secureCookies: Bool = true,
        bcryptCost: UInt8 = 10,
        maxFailuresPerAccount: Int = 5,
        maxFailuresPerAddress: Int = 20,
        failureWindow: Duration = .seconds(15 * 60)
    ) {
        self.privateKeyPEM = privateKeyPEM
        self.accessTokenLifetime = accessTokenLifetime
        self.refreshTokenLifetime = refreshTokenLifetime
        self.secureCookies = secureCookies
        self.bcryptCost = bcryptCost
        self.maxFailuresPerAccount = maxFailuresPerAccount
        self.maxFailuresPerAddress = maxFailuresPerAddress
        self.failureWindow = failureWindow
    }

    /// `JWT_PRIVATE_KEY` or `JWT_PRIVATE_KEY_PATH`, `ACCESS_TOKEN_TTL_SECONDS`,
    /// `REFRESH_TOKEN_TTL_SECONDS`, `COOKIE_SECURE`, `BCRYPT_COST`, `SIGNIN_MAX_FAILURES_PER_ACCOUNT`,
    /// `SIGNIN_MAX_FAILURES_PER_ADDRESS`, `SIGNIN_FAILURE_WINDOW_SECONDS`.
    public init(environment: EnvironmentReader, privateKeyPEM: String) throws {
        let cost = try environment.int("BCRYPT_COST", default: 10, in: 10...16)
        self.init(
            privateKeyPEM: privateKeyPEM,
            accessTokenLifetime: try environment.seconds("ACCESS_TOKEN_TTL_SECONDS", default: 15 * 60, in: 1...86_400),
            refreshTokenLifetime: try environment.seconds("REFRESH_TOKEN_TTL_SECONDS", default: 30 * 86_400, in: 1...366 * 86_400),
            secureCookies: try environment.bool("COOKIE_SECURE", default: true),
            bcryptCost: UInt8(cost),
            maxFailuresPerAccount: try environment.int("SIGNIN_MAX_FAILURES_PER_ACCOUNT", default: 5, in: 1...1_000),
            maxFailuresPerAddress: try environment.int("SIGNIN_MAX_FAILURES_PER_ADDRESS", default: 20, in: 1...1_000),
            failureWindow: try environment.seconds("SIGNIN_FAILURE_WINDOW_SECONDS", default: 15 * 60, in: 1...86_400)
        )
    }
}
