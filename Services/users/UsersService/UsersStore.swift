import Foundation
import Logging
import PostgresNIO
import PostgresSupport
import ServiceHTTP

/// A user as lists show it.
public struct UserSummary: Codable, Sendable, Equatable {
    public let id: String
    public let username: String
    public let displayName: String
    public let online: Bool
    @ExplicitNull public var lastSeenAt: Date?
}

/// A user's full profile.
public struct UserProfile: Codable, Sendable, Equatable {
    public let id: String
    public let username: String
    public let displayName: String
    public let about: String
    public let online: Bool
    @ExplicitNull public var lastSeenAt: Date?
}

extension UserSummary {
    /// Reads `id, username, display_name, online, last_seen_at`.
    init(reading reader: inout PostgresRowReader) throws {
        try self.init(id: reader.next(), username: reader.next(), displayName: reader.next(), online: reader.next(), lastSeenAt: reader.next())
    }
}

extension UserProfile {
    /// Reads `id, username, display_name, about, online, last_seen_at`.
    init(reading reader: inout PostgresRowReader) throws {
        try self.init(
            id: reader.next(), username: reader.next(), displayName: reader.next(), about: reader.next(), online: reader.next(), lastSeenAt: reader.next())
    }
}

/// One page of a search, and where the next begins.
public struct UserPage: Codable, Sendable, Equatable {
    public let users: [UserSummary]
    /// `null` on the last page.
    @ExplicitNull public var nextCursor: String?
}

/// Every SQL statement of users, against its own schema.
struct UsersStore: Sendable {
    let logger: Logger

    /// Users whose username or display name starts with `query`, ordered by (username, id),
    /// after the cursor's position.
    func search(query: String, limit: Int, after cursor: UserCursor?, on client: PostgresClient) async throws -> UserPage {
        let pattern = Self.likePrefix(query.lowercased())
        let afterName = cursor?.username ?? ""
        let afterId = cursor?.id ?? ""
        let rows = try await client.query(
            """
            SELECT p.id, p.username, p.display_name, \(unescaped: Self.presenceColumns)
            FROM profiles p LEFT JOIN presence s ON s.id = p.id
            WHERE (lower(username) LIKE \(pattern) OR lower(display_name) LIKE \(pattern))
              AND (lower(username), p.id) > (\(afterName), \(afterId))
            ORDER BY lower(username), p.id
            LIMIT \(limit + 1)
            """,
            logger: logger
        )
        var users = try await rows.readAll(UserSummary.init(reading:))
        var next: String?
        if users.count > limit {
            users.removeLast()
            next = users.last.map { UserCursor(username: $0.username.lowercased(), id: $0.id).encoded }
        }
        return UserPage(users: users, nextCursor: next)
    }

    func profile(id: String, on client: PostgresClient) async throws -> UserProfile? {
        let rows = try await client.query(
            """
            SELECT p.id, p.username, p.display_name, p.about, \(unescaped: Self.presenceColumns)
            FROM profiles p LEFT JOIN presence s ON s.id = p.id
            WHERE p.id = \(id)
            """,
            logger: logger
        )
        return try await rows.readFirst(UserProfile.init(reading:))
    }

    /// Adds the profile of a registered account, unless the account was deleted already: its
    /// registration may come after its deletion (a retried batch, another replica's batch).
    func insertProfile(id: String, username: String, displayName: String, createdAt: Date, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO profiles (id, username, display_name, created_at)
            SELECT \(id), \(username), \(displayName), \(createdAt)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE id = \(id))
            ON CONFLICT (id) DO NOTHING
            """,
            logger: logger
        )
    }

    func updateProfile(id: String, displayName: String?, about: String?, on connection: PostgresConnection) async throws -> UserProfile? {
        let rows = try await connection.query(
            """
            WITH p AS (
                UPDATE profiles
                SET display_name = coalesce(\(displayName), display_name), about = coalesce(\(about), about)
                WHERE id = \(id)
                RETURNING id, username, display_name, about
            )
            SELECT p.id, p.username, p.display_name, p.about, \(unescaped: Self.presenceColumns)
            FROM p LEFT JOIN presence s ON s.id = p.id
            """,
            logger: logger
        )
        return try await rows.readFirst(UserProfile.init(reading:))
    }

    /// Applies a presence change unless a newer one was applied already (events may arrive late).
    /// It does not need the profile: the registration may still be on its way. One for an account
    /// already deleted is dropped (one that slips past a deletion in flight stays unread: every
    /// read starts from `profiles`).
    func setPresence(id: String, online: Bool, at time: Date, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO presence AS s (id, online, last_seen_at)
            SELECT \(id), \(online), \(time)
            WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE id = \(id))
            ON CONFLICT (id) DO UPDATE SET online = EXCLUDED.online, last_seen_at = EXCLUDED.last_seen_at
            WHERE s.last_seen_at <= EXCLUDED.last_seen_at
            """,
            logger: logger
        )
    }

    /// Holds the accounts of `ids` until the transaction ends, so a registration and a deletion of
    /// one account, applied by two replicas at once, take turns: the one that runs second sees the
    /// other's rows (the tombstone, or the profile to delete). Locks are taken in one order, so two
    /// batches cannot wait on each other, and keyed by schema, so other deployments are not held.
    func lockAccounts(_ ids: [String], on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            SELECT count(pg_advisory_xact_lock(hashtext(current_schema()), key))
            FROM (SELECT DISTINCT hashtext(id) AS key FROM unnest(\(ids)::text[]) AS id ORDER BY key) AS accounts
            """,
            logger: logger
        )
    }

    /// Removes the profile and its presence; its contacts (both directions) go with it.
    func deleteProfile(id: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "WITH presence_gone AS (DELETE FROM presence WHERE id = \(id)) DELETE FROM profiles WHERE id = \(id)", logger: logger)
        try await connection.query("INSERT INTO deleted_users (id) VALUES (\(id)) ON CONFLICT DO NOTHING", logger: logger)
    }

    /// Whether `id` is a user this service has heard of: registered, or registered and deleted.
    func hasHeardOf(_ id: String, on client: PostgresClient) async throws -> Bool {
        let rows = try await client.query(
            "SELECT 1 FROM profiles WHERE id = \(id) UNION ALL SELECT 1 FROM deleted_users WHERE id = \(id) LIMIT 1",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    /// The owner's contacts (or only `contactId`, when given), by username.
    func contacts(of ownerId: String, only contactId: String? = nil, on client: PostgresClient) async throws -> [UserSummary] {
        let rows = try await client.query(
            """
            SELECT p.id, p.username, p.display_name, \(unescaped: Self.presenceColumns)
            FROM contacts c JOIN profiles p ON p.id = c.contact_id LEFT JOIN presence s ON s.id = p.id
            WHERE c.owner_id = \(ownerId) AND (\(contactId)::text IS NULL OR c.contact_id = \(contactId))
            ORDER BY lower(p.username), p.id
            """,
            logger: logger
        )
        return try await rows.readAll(UserSummary.init(reading:))
    }

    enum ContactAddition { case added, existing, unknownUser }

    /// Adds a contact, inside the caller's transaction.
    func addContact(ownerId: String, contactId: String, on connection: PostgresConnection) async throws -> ContactAddition {
        let rows = try await connection.query(
            """
            INSERT INTO contacts (owner_id, contact_id)
            SELECT \(ownerId), id FROM profiles
            WHERE id = \(contactId) AND EXISTS (SELECT 1 FROM profiles WHERE id = \(ownerId))
            ON CONFLICT DO NOTHING
            RETURNING contact_id
            """,
            logger: logger
        )
        for try await _ in rows { return .added }
        let existing = try await connection.query(
            "SELECT 1 FROM contacts WHERE owner_id = \(ownerId) AND contact_id = \(contactId)",
            logger: logger
        )
        for try await _ in existing { return .existing }
        return .unknownUser
    }

    /// Removes a contact, inside the caller's transaction; false when it was not one.
    func removeContact(ownerId: String, contactId: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM contacts WHERE owner_id = \(ownerId) AND contact_id = \(contactId) RETURNING contact_id",
            logger: logger
        )
        for try await _ in rows { return true }
        return false
    }

    /// `online, last_seen_at` of a profile `p` joined (LEFT JOIN) with its presence `s`: offline and
    /// never seen until its first change.
    static let presenceColumns = "coalesce(s.online, false), s.last_seen_at"

    /// `query%` with LIKE's own wildcards escaped, so `_` and `%` match literally.
    static func likePrefix(_ query: String) -> String {
        query.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
    }
}

/// The position after the last user of a page: opaque to clients (base64url of JSON).
struct UserCursor: Codable, Sendable, Equatable {
    let username: String
    let id: String

    var encoded: String {
        ((try? JSONEncoder().encode(self)) ?? Data()).base64URLEncodedString
    }

    init(username: String, id: String) {
        self.username = username
        self.id = id
    }

    init(encoded: String) throws(APIError) {
        guard encoded.count <= 512, let data = Data(base64URLEncoded: encoded),
            let cursor = try? JSONDecoder().decode(UserCursor.self, from: data)
        else {
            throw APIError.invalidCursor
        }
        self = cursor
    }
}
