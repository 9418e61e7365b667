import Foundation
import Logging
import PostgresNIO
import PostgresSupport
import ServiceHTTP

/// The public `user` of auth (the public contract).
public struct AuthUser: Codable, Sendable, Equatable {
    public let id: String
    public let username: String
    public let email: String
    public let displayName: String
    public let createdAt: Date
}

extension AuthUser {
    /// Reads `id, username, email, display_name, created_at`.
    init(reading reader: inout PostgresRowReader) throws {
        try self.init(id: reader.next(), username: reader.next(), email: reader.next(), displayName: reader.next(), createdAt: reader.next())
    }
}

/// What a presented refresh token turned out to be.
enum RefreshTokenState: Sendable {
    case valid(sessionId: String, userId: String)
    /// Already used once: someone replayed it. The session must die.
    case reused(sessionId: String, userId: String)
    case invalid
}

/// Every SQL statement of auth, against its own schema.
struct AuthStore: Sendable {
    let logger: Logger

    /// Inserts a user; a duplicate username or email is a 409 naming which, and so is the username
    /// of an account deleted less than 30 days ago.
    func insertUser(_ user: AuthUser, passwordHash: String, on connection: PostgresConnection) async throws {
        let reserved = try await connection.query(
            "SELECT 1 FROM reserved_usernames WHERE username = lower(\(user.username)) AND released_at > now()",
            logger: logger
        )
        for try await _ in reserved { throw APIError.conflict("username_taken", "That username is taken.") }
        do {
            try await connection.query(
                """
                INSERT INTO users (id, username, email, display_name, password_hash, created_at)
                VALUES (\(user.id), \(user.username), \(user.email), \(user.displayName), \(passwordHash), \(user.createdAt))
                """,
                logger: logger
            )
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            if error.serverInfo?[.constraintName] == "users_email_key" {
                throw APIError.conflict("email_taken", "That email is already registered.")
            }
            throw APIError.conflict("username_taken", "That username is taken.")
        }
    }

    /// A user by username or email, case-insensitively, with the password hash.
    func credentials(forLogin login: String, on client: PostgresClient) async throws -> (AuthUser, String)? {
        let rows = try await client.query(
            """
            SELECT id, username, email, display_name, created_at, password_hash FROM users
            WHERE lower(username) = lower(\(login)) OR lower(email) = lower(\(login))
            LIMIT 1
            """,
            logger: logger
        )
        return try await Self.firstCredentials(rows)
    }

    func updatePasswordHash(userId: String, hash: String, on client: PostgresClient) async throws {
        try await client.query("UPDATE users SET password_hash = \(hash) WHERE id = \(userId)", logger: logger)
    }

    func credentials(forUser id: String, on client: PostgresClient) async throws -> (AuthUser, String)? {
        let rows = try await client.query(
            "SELECT id, username, email, display_name, created_at, password_hash FROM users WHERE id = \(id)",
            logger: logger
        )
        return try await Self.firstCredentials(rows)
    }

    private static func firstCredentials(_ rows: PostgresRowSequence) async throws -> (AuthUser, String)? {
        try await rows.readFirst { reader in try (AuthUser(reading: &reader), reader.next()) }
    }

    /// The user behind an access token, only while its session is live (signed-out sessions end
    /// here even before the token expires).
    func user(id: String, sessionId: String, on client: PostgresClient) async throws -> AuthUser? {
        let rows = try await client.query(
            """
            SELECT u.id, u.username, u.email, u.display_name, u.created_at
            FROM users u JOIN sessions s ON s.user_id = u.id
            WHERE u.id = \(id) AND s.id = \(sessionId) AND s.revoked_at IS NULL
            """,
            logger: logger
        )
        return try await rows.readFirst(AuthUser.init(reading:))
    }

    func createSession(id: String, userId: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO sessions (id, user_id) VALUES (\(id), \(userId))",
            logger: logger
        )
    }

    func storeRefreshToken(hash: String, sessionId: String, expiresAt: Date, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
            VALUES (\(hash), \(sessionId), \(expiresAt))
            """,
            logger: logger
        )
    }

    /// Marks a refresh token used (locking it, so two concurrent refreshes cannot both succeed).
    func consumeRefreshToken(hash: String, on connection: PostgresConnection) async throws -> RefreshTokenState {
        let rows = try await connection.query(
            """
            SELECT r.session_id, s.user_id, r.used_at IS NOT NULL, r.expires_at < now() OR s.revoked_at IS NOT NULL
            FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
            WHERE r.token_hash = \(hash)
            FOR UPDATE OF r
            """,
            logger: logger
        )
        let token: (sessionId: String, userId: String, used: Bool, dead: Bool)? = try await rows.readFirst { reader in
            try (reader.next(), reader.next(), reader.next(), reader.next())
        }
        guard let token else { return .invalid }
        if token.used { return .reused(sessionId: token.sessionId, userId: token.userId) }
        if token.dead { return .invalid }
        try await connection.query(
            "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = \(hash)",
            logger: logger
        )
        return .valid(sessionId: token.sessionId, userId: token.userId)
    }

    /// Revokes a live session; false when it was already revoked (or is not the user's).
    func revokeSession(id: String, userId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE sessions SET revoked_at = now()
            WHERE id = \(id) AND user_id = \(userId) AND revoked_at IS NULL
            RETURNING id
            """,
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    /// The session a refresh token belongs to (used or not), for signing out with only that cookie.
    func session(ofRefreshToken hash: String, on client: PostgresClient) async throws -> (id: String, userId: String)? {
        let rows = try await client.query(
            """
            SELECT s.id, s.user_id FROM refresh_tokens r
            JOIN sessions s ON s.id = r.session_id
            WHERE r.token_hash = \(hash)
            """,
            logger: logger
        )
        return try await rows.readFirst { reader in try (reader.next(), reader.next()) }
    }

    /// Deletes the account (its sessions and refresh tokens go with it) and keeps its username
    /// reserved for 30 days.
    func deleteUser(id: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            WITH gone AS (DELETE FROM users WHERE id = \(id) RETURNING lower(username) AS username)
            INSERT INTO reserved_usernames (username, released_at)
            SELECT username, now() + interval '30 days' FROM gone
            ON CONFLICT (username) DO UPDATE SET released_at = EXCLUDED.released_at
            """,
            logger: logger
        )
    }

    func updateDisplayName(userId: String, displayName: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE users SET display_name = \(displayName) WHERE id = \(userId)",
            logger: logger
        )
    }
}
