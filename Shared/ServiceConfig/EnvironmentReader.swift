import Foundation

/// Reads configuration from environment variables, with defaults that work on the local stack.
///
/// Every service is configured this way (twelve-factor style); the README's configuration table
/// lists the variables. A value that is present but malformed is an error at start-up, never a
/// silent fallback to the default.
public struct EnvironmentReader: Sendable {
    private let values: [String: String]

    /// The process environment.
    public init() {
        self.values = ProcessInfo.processInfo.environment
    }

    /// A fixed set of values (tests), optionally layered over the process environment.
    public init(_ values: [String: String], inheritingProcessEnvironment: Bool = false) {
        if inheritingProcessEnvironment {
            self.values = EnvironmentReader().values.merging(values) { _, new in new }
        } else {
            self.values = values
        }
    }

    public func string(_ key: String) -> String? {
        guard let value = values[key], !value.isEmpty else { return nil }
        return value
    }

    public func string(_ key: String, default defaultValue: String) -> String {
        string(key) ?? defaultValue
    }

    /// An integer that must lie in `range`, given in `unit` if it has one (the error names both).
    /// Every integer setting gives its range, so a zero, a negative or a huge value where none
    /// makes sense stops the service at start, not where the value is first used (a `Duration`
    /// made milliseconds, a C client's 16- or 32-bit field, a thread per connection).
    public func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>, unit: String? = nil) throws(ConfigurationError) -> Int {
        guard let raw = string(key) else { return defaultValue }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(key: key, value: raw, expected: "\(range.lowerBound) to \(range.upperBound)" + (unit.map { " (\($0))" } ?? ""))
        }
        return value
    }

    /// A TCP port.
    public func port(_ key: String, default defaultValue: Int) throws(ConfigurationError) -> Int {
        try int(key, default: defaultValue, in: 1...65_535)
    }

    /// A duration given in whole seconds, within `range`.
    public func seconds(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Duration {
        .seconds(try int(key, default: defaultValue, in: range, unit: "seconds"))
    }

    public func bool(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        guard let raw = string(key)?.lowercased() else { return defaultValue }
        switch raw {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(key: key, value: raw, expected: "true or false")
        }
    }

    /// A secret: `KEY`, or the contents of the file `KEY_FILE` names (a mounted Kubernetes Secret),
    /// without a trailing newline; nil when neither is set.
    public func secret(_ key: String) throws(ConfigurationError) -> String? {
        if let value = string(key) { return value }
        guard let path = string("\(key)_FILE") else { return nil }
        guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "\(key)_FILE", value: path, expected: "a readable file")
        }
        return contents.trimmingCharacters(in: .newlines)
    }

    /// A comma-separated list; empty items are dropped.
    public func list(_ key: String, default defaultValue: [String]) -> [String] {
        guard let raw = string(key) else { return defaultValue }
        return raw.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }
}

/// A configuration value that is present but unusable.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let key: String
    public let value: String
    public let expected: String

    public init(key: String, value: String, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String { "environment variable \(key)=\(value) is invalid: expected \(expected)" }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        var slice = self[...]
        while let first = slice.first, first.isWhitespace { slice = slice.dropFirst() }
        while let last = slice.last, last.isWhitespace { slice = slice.dropLast() }
        return String(slice)
    }
}
