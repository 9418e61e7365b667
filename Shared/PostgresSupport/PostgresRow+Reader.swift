import PostgresNIO

// Rows are read column by column, each as its own type, for the reason bindings are written value
// by value (PreparedStatements.swift): `PostgresRow.decode` with a tuple type goes through a
// parameter pack, which the optimizer does not specialize, so every row looked up the tuple's and
// each column's type metadata at run time (a third of messages' CPU serving a history page of 1,000
// rows; see the README's Benchmark).

extension PostgresRow {
    /// The row as `read` reads it, its columns in order: `try row.read(UserSummary.init(reading:))`,
    /// or `try row.read { reader in try (reader.next(), reader.next()) as (String, Int64) }`.
    @inlinable public func read<Value>(_ read: (inout PostgresRowReader) throws -> Value) rethrows -> Value {
        var reader = PostgresRowReader(self)
        return try read(&reader)
    }
}

extension PostgresRowSequence {
    /// Every row, each as `read` reads it.
    @inlinable public func readAll<Value>(_ read: (inout PostgresRowReader) throws -> Value) async throws -> [Value] {
        var values: [Value] = []
        for try await row in self { values.append(try row.read(read)) }
        return values
    }

    /// The first row as `read` reads it, or nil when there is none.
    @inlinable public func readFirst<Value>(_ read: (inout PostgresRowReader) throws -> Value) async throws -> Value? {
        for try await row in self { return try row.read(read) }
        return nil
    }
}

/// A row's cells in column order, each decoded as the type its caller asks for.
public struct PostgresRowReader {
    @usableFromInline var cells: PostgresRow.Iterator

    @inlinable init(_ row: PostgresRow) { cells = row.makeIterator() }

    /// The next column as `Value`; a column that does not hold one throws PostgresNIO's decoding
    /// error, which names the column. Reading past the last column is a bug in the statement's reader.
    @inlinable public mutating func next<Value: PostgresDecodable>(_: Value.Type = Value.self, file: String = #fileID, line: Int = #line) throws -> Value {
        guard let cell = cells.next() else { preconditionFailure("read past the row's last column (\(file):\(line))") }
        return try cell.decode(Value.self, context: .default, file: file, line: line)
    }
}
