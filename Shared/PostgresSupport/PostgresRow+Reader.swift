import PostgresNIO

// Rows are read column by column, each as its own type, for the reason bindings are written value
// by value (PreparedStatements.swift): `PostgresRow.decode` with a tuple type goes through a
// parameter pack, which the optimizer does not specialize, so every row looked up the tuple's and
// each column's type metadata at run time (a third of messages' CPU serving a history page of 1,000
// rows; see the README's Benchmark).

extension PostgresRow {
    /// Reads the row's columns in order: `var reader = row.reader; let id: String = try reader.next()`.
    @inlinable public var reader: PostgresRowReader { PostgresRowReader(self) }
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
