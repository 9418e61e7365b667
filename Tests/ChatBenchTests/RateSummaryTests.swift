import Foundation
import Testing

@testable import ChatBench

/// `make bench` ends with one table of its rate phases, each written by its own chat-bench run to a
/// file and read back by the summary phase, and with the highest rate that met the target.
@Suite("Rate summary")
struct RateSummaryTests {
    static func result(_ offered: Int, p99: Double?, lost: Int = 0, unacked: Int = 0) -> RateResult {
        let messages = offered * 20
        return RateResult(
            offered: offered, messages: messages, delivered: messages - lost, acked: messages - unacked, deliveredPerSecond: Double(offered),
            // Latencies to one decimal, as a line writes them.
            p50: p99.map { _ in 24.5 }, p99: p99, p999: p99.map { _ in 60.5 }, ackP50: 20.5, ackP99: p99, cpuPerMessage: 358.4, busy: 91.1,
            steal: 0.3)
    }

    @Test("a result's line reads back as the same result, unrounded, a missing latency included")
    func lineRoundTrip() throws {
        var measured = Self.result(5000, p99: 50.04)
        measured.p50 = 24.35
        measured.cpuPerMessage = 365.8713
        for result in [measured, Self.result(10000, p99: nil, lost: 200_000, unacked: 200_000)] {
            #expect(try RateResult(line: Substring(result.line)) == result)
        }
        #expect(measured.line.hasPrefix("offered=5000 messages=100000 delivered=100000 acked=100000 "))
        // Shown as 50.0 in the table, but not within 50 ms.
        #expect(try RateResult(line: Substring(measured.line)).meets(p99Limit: RateSummary.p99Limit) == false)
    }

    @Test("a line that is not a result is refused, naming what is wrong")
    func malformedLines() {
        let broken = Self.result(1000, p99: 30).line.replacingOccurrences(of: " p99=30.0 ", with: " p99=fast ")
        for (line, named) in [
            ("offered=1000 p99", "not a rate result"), ("offered=1000 messages=20000", "without a number for delivered"),
            (broken, "without a number for p99"),
        ] {
            let error = #expect(throws: BenchError.self) { try RateResult(line: Substring(line)) }
            #expect(error?.description.contains(named) == true, "\(line)")
        }
    }

    @Test("the highest rate with everything delivered and acked and p99 ≤ 50 ms is the answer")
    func highestMeetingTarget() {
        let summary = RateSummary(results: [
            Self.result(1000, p99: 31.0), Self.result(2000, p99: 50.0), Self.result(3000, p99: 50.1), Self.result(4000, p99: 20, lost: 1),
            Self.result(5000, p99: 20, unacked: 1),
        ])
        #expect(summary.highestMeetingTarget?.offered == 2000)
        // Rates in any order: the highest is the answer, not the last.
        #expect(RateSummary(results: [Self.result(2000, p99: 40), Self.result(1000, p99: 30)]).highestMeetingTarget?.offered == 2000)
        #expect(summary.report.count == 7)
        #expect(summary.report.last == "the highest offered rate with every message delivered and acked and p99 ≤ 50 ms: 2000 msg/s")
        #expect(summary.report[2].hasPrefix("         2000          2000        0     24.5     50.0      60.5"))
        let none = RateSummary(results: [Self.result(5000, p99: 200.2), Self.result(1000, p99: nil, lost: 20_000, unacked: 20_000)])
        #expect(none.highestMeetingTarget == nil)
        #expect(none.report.last == "no offered rate had every message delivered and acked with p99 ≤ 50 ms")
        #expect(none.report[2].contains("    -        -"))
    }

    @Test("each rate phase appends its line to the results file, which the summary reads in order")
    func resultsFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rates-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let results = [Self.result(1000, p99: 31.0), Self.result(5000, p99: 200.2, lost: 3)]
        for result in results { try result.append(to: file) }
        #expect(try RateSummary.results(in: file) == results)
    }
}
