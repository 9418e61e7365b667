import Foundation

extension Array where Element == Double {
    /// The value at fraction `p` of this ascending array (nearest rank, rounded down); nil when
    /// empty.
    func percentile(_ p: Double) -> Double? {
        isEmpty ? nil : self[Swift.min(count - 1, Int(Double(count) * p))]
    }
}

/// A latency in ms to one decimal, or `-` when there is none.
func formatted(_ milliseconds: Double?) -> String {
    milliseconds.map { String(format: "%.1f", $0) } ?? "-"
}
