import Logging
import PostgresNIO

/// Applies a service's migrations to its schema: each one once, in a transaction of its own, under
/// an advisory lock so that replicas starting together apply nothing twice. A failing migration
/// rolls back whole and stops the run; the applied ids are recorded in `<schema>.schema_migrations`.
public struct MigrationRunner: Sendable {
    public let schema: SchemaName
    public let migrations: [Migration]

    public init(schema: SchemaName, migrations: [Migration]) {
        self.schema = schema
        self.migrations = migrations
    }

    /// Applies what is pending; returns the ids applied by this call.
    @discardableResult
    public func run(on client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.withConnection { connection in
            try await run(on: connection, logger: logger)
        }
    }

    public func run(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        let lockKey = "swiftchat.migrations.\(schema)"
        try await connection.query("SELECT pg_advisory_lock(hashtext(\(lockKey)))", logger: logger)
        do {
            let applied = try await apply(on: connection, logger: logger)
            try await connection.query("SELECT pg_advisory_unlock(hashtext(\(lockKey)))", logger: logger)
            return applied
        } catch {
            // The lock is per session; release it even on failure so the pooled connection is clean.
            _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext(\(lockKey)))", logger: logger)
            throw error
        }
    }

    private func apply(on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        // CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS; a service role that
        // was given its schema (the local stack, a managed database) has no such right.
        var schemaExists = false
        for try await _ in try await connection.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schema.rawValue)", logger: logger) {
            schemaExists = true
        }
        if !schemaExists {
            try await connection.query("CREATE SCHEMA \(unescaped: schema.rawValue)", logger: logger)
        }
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS \(unescaped: schema.rawValue).schema_migrations (
                id text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        var done = Set<String>()
        for try await id in try await connection.query("SELECT id FROM \(unescaped: schema.rawValue).schema_migrations", logger: logger).decode(String.self) {
            done.insert(id)
        }
        var applied: [String] = []
        for migration in migrations where !done.contains(migration.id) {
            do {
                try await connection.withTransaction(logger: logger) { connection in
                    // Unqualified names in the file land in the service's schema.
                    try await connection.query("SET LOCAL search_path TO \(unescaped: schema.rawValue)", logger: logger)
                    for statement in SQLScript.statements(in: migration.sql) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO \(unescaped: schema.rawValue).schema_migrations (id) VALUES (\(migration.id))",
                        logger: logger
                    )
                }
            } catch {
                throw MigrationError(migrationID: migration.id, reason: String(reflecting: error))
            }
            logger.info("applied migration", metadata: ["schema": "\(schema)", "migration": "\(migration.id)"])
            applied.append(migration.id)
        }
        return applied
    }
}
