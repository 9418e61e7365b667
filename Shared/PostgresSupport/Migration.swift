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
