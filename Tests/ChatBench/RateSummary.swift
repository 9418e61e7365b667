import Foundation

/// One rate phase's headline figures. `make bench` runs each offered rate as its own phase; each
/// appends its line to the file `--results` names, and the `summary` phase prints them as one
/// table (DESIGN §7) with the highest rate at which the target held.
struct RateResult: Equatable {
    var offered: Int
    var messages: Int
    var delivered: Int
    var acked: Int
    /// Messages delivered per second, from the first scheduled send to the last delivery.
    var deliveredPerSecond: Double
    /// Sender → recipient and sender → ack, ms from the scheduled send; nil when none arrived.
    var p50: Double?
    var p99: Double?
    var p999: Double?
    var ackP50: Double?
    var ackP99: Double?
    /// CPU of every watched process together, µs per delivered message.
    var cpuPerMessage = 0.0
    /// The machine's cores over the phase: busy, and taken by the hypervisor, in %.
    var busy = 0.0
    var steal = 0.0

    var lost: Int { messages - delivered }

    /// Every message delivered and acked, and p99 within `p99Limit` ms.
    func meets(p99Limit: Double) -> Bool {
        delivered == messages && acked == messages && (p99 ?? .infinity) <= p99Limit
    }

    /// `key=value` pairs separated by spaces, one result per line; a missing latency is `-`. Numbers
    /// are written in full, so the summary judges the figures the phase measured, not rounded ones.
    var line: String {
        func exact(_ value: Double?) -> String { value.map { "\($0)" } ?? "-" }
        return [
            "offered=\(offered)", "messages=\(messages)", "delivered=\(delivered)", "acked=\(acked)",
            "delivered_per_s=\(deliveredPerSecond)", "p50=\(exact(p50))", "p99=\(exact(p99))", "p999=\(exact(p999))",
            "ack_p50=\(exact(ackP50))", "ack_p99=\(exact(ackP99))", "cpu_us_per_msg=\(cpuPerMessage)", "busy=\(busy)", "steal=\(steal)",
        ].joined(separator: " ")
    }
}

extension RateResult {
    /// Reads what `line` wrote; a line that is not such a result is an error that names it.
    init(line: Substring) throws {
        var fields: [Substring: Substring] = [:]
        for pair in line.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw BenchError("not a rate result: \(line)") }
            fields[parts[0]] = parts[1]
        }
        func number<Number: LosslessStringConvertible>(_ key: Substring) throws -> Number {
            guard let text = fields[key], let value = Number(String(text)) else { throw BenchError("rate result without a number for \(key): \(line)") }
            return value
        }
        func ms(_ key: Substring) throws -> Double? { fields[key] == "-" ? nil : try number(key) }
        self.init(
            offered: try number("offered"), messages: try number("messages"), delivered: try number("delivered"), acked: try number("acked"),
            deliveredPerSecond: try number("delivered_per_s"), p50: try ms("p50"), p99: try ms("p99"), p999: try ms("p999"),
            ackP50: try ms("ack_p50"), ackP99: try ms("ack_p99"), cpuPerMessage: try number("cpu_us_per_msg"), busy: try number("busy"),
            steal: try number("steal"))
    }
}

/// Every rate phase of one `make bench` run, in the order they ran.
struct RateSummary {
    /// DESIGN §7's target: every message delivered with p99 ≤ 50 ms, sender to recipient.
    static let p99Limit = 50.0

    let results: [RateResult]

    /// The highest offered rate that met the target, if any did.
    var highestMeetingTarget: RateResult? {
        results.filter { $0.meets(p99Limit: Self.p99Limit) }.max { $0.offered < $1.offered }
    }

    /// The table, then the answer.
    var report: [String] {
        var lines = ["offered msg/s   delivered/s     lost   p50 ms   p99 ms   p999 ms   ack p50   ack p99   CPU µs/msg   busy %   steal %"]
        for result in results {
            lines.append(
                String(format: "%13d %13.0f %8d ", result.offered, result.deliveredPerSecond, result.lost)
                    + [result.p50, result.p99].map { formatted($0).leftPadded(to: 8) }.joined(separator: " ") + " "
                    + [result.p999, result.ackP50, result.ackP99].map { formatted($0).leftPadded(to: 9) }.joined(separator: " ")
                    + String(format: " %12.1f %8.1f %9.1f", result.cpuPerMessage, result.busy, result.steal))
        }
        let limit = String(format: "%.0f", Self.p99Limit)
        if let best = highestMeetingTarget {
            lines.append("the highest offered rate with every message delivered and acked and p99 ≤ \(limit) ms: \(best.offered) msg/s")
        } else {
            lines.append("no offered rate had every message delivered and acked with p99 ≤ \(limit) ms")
        }
        return lines
    }
}

extension RateSummary {
    /// The results in `file`, one per line.
    static func results(in file: String) throws -> [RateResult] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(RateResult.init(line:))
    }
}

extension RateResult {
    /// Appends `line` to `file`, creating it if need be.
    func append(to file: String) throws {
        if !FileManager.default.fileExists(atPath: file) { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: file) else { throw BenchError("cannot write \(file)") }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((line + "\n").utf8))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
