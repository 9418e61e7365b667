extension Array where Element == Double {
    /// The value at fraction `p` of this ascending array (nearest rank, rounded down); nil when
    /// empty.
    func percentile(_ p: Double) -> Double? {
        isEmpty ? nil : self[Swift.min(count - 1, Int(Double(count) * p))]
    }
}
