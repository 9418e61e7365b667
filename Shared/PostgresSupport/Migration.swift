import Foundation

/// One versioned SQL file. Its id (the file name without `.sql`) is what is recorded as applied;
/// ids sort in the order they must run (e.g. `0001_create_users`).
public struct Migration: Sendable, Equatable {
    public let id: String
    public let sql: String

    public init(id: String, sql: String) {
        self.id = id
        self.sql = sql
    }

    /// The `Migrations` folder a target ships as a resource (`resources: [.copy("Migrations")]`).
    public static func load(bundle: Bundle, owner: String) throws -> [Migration] {
        guard let directory = bundle.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError(migrationID: owner, reason: "the \(owner) migrations are missing from the bundle")
        }
        return try load(from: directory)
    }

    /// Every `*.sql` file in a folder (a target's resource folder), sorted by name.
    public static func load(from directory: URL) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { file in
            Migration(id: file.deletingPathExtension().lastPathComponent, sql: try String(contentsOf: file, encoding: .utf8))
        }
    }
}

public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public let migrationID: String
    public let reason: String

    public init(migrationID: String, reason: String) {
        self.migrationID = migrationID
        self.reason = reason
    }

    public var description: String { "migration \(migrationID) failed: \(reason)" }
}
