import Foundation

/// The services' own stage timers over one phase, read from their `/metrics` at its start and
/// end: every consumer's handler time (`swiftchat_bus_handler_seconds`, one row per queue), every
/// outbox relay's rounds that published (`swiftchat_outbox_round_seconds`) and the broker's part
/// of those rounds (`swiftchat_outbox_publish_seconds`: publishing, and waiting for the
/// confirms), its hand-offs (`swiftchat_outbox_handoff_seconds`: the same, for events handed
/// over), and every batcher's broker messages (`swiftchat_bus_batcher_seconds`, one row per
/// instance and event type: socket-handler's sends and receipts). A stage busy for most of the
/// phase is a serial stage at its limit: its queue builds up and every message waits there,
/// whatever the cores have left (a batcher, one broker message in flight, is busy whenever sends
/// keep coming: its batches grow instead).
struct StageWindow {
    /// The services to read, by name and metrics port.
    let services: [(name: String, port: Int)]
    private let start = ContinuousClock.now
    private let before: [String: StageTime]

    private init(services: [(name: String, port: Int)], before: [String: StageTime]) {
        self.services = services
        self.before = before
    }

    static func open(_ services: [(name: String, port: Int)]) async -> StageWindow {
        StageWindow(services: services, before: await read(services))
    }

    /// One row per stage that handled anything in the window: busy share of the window, batches
    /// (or rounds), and mean time per batch.
    func report() async {
        guard !services.isEmpty else { return }
        let wall = (ContinuousClock.now - start).seconds
        let after = await Self.read(services)
        print("stage (service: queue, outbox or batcher)     busy %   batches   ms/batch")
        for key in after.keys.sorted() {
            let used = after[key]!.minus(before[key] ?? StageTime())
            guard used.count > 0 else { continue }
            print(
                key.padding(toLength: 44, withPad: " ", startingAt: 0)
                    + String(format: "%8.1f %9.0f %10.2f", 100 * used.seconds / max(wall, 0.001), used.count, 1000 * used.seconds / used.count))
        }
    }

    private static func read(_ services: [(name: String, port: Int)]) async -> [String: StageTime] {
        var stages: [String: StageTime] = [:]
        for service in services {
            let (status, data) = await httpData("GET", "http://127.0.0.1:\(service.port)/metrics")
            guard status == 200 else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                guard let sample = StageSample(line) else { continue }
                stages["\(service.name): \(sample.stage)", default: StageTime()].add(sample)
            }
        }
        return stages
    }
}

struct StageTime {
    var seconds = 0.0
    var count = 0.0

    mutating func add(_ sample: StageSample) {
        if sample.isCount { count += sample.value } else { seconds += sample.value }
    }

    func minus(_ other: StageTime) -> StageTime {
        StageTime(seconds: seconds - other.seconds, count: count - other.count)
    }
}

/// One line of a stage timer's sum or count, e.g.
/// `swiftchat_bus_handler_seconds_sum{queue="bench_messages.message-sent"} 34.49`.
struct StageSample {
    let stage: String
    let isCount: Bool
    let value: Double

    /// The timers read, by metric name, and what a row without a queue or type label is called.
    private static let timers = [
        ("swiftchat_bus_handler_seconds_", ""), ("swiftchat_outbox_round_seconds_", "outbox relay rounds"),
        ("swiftchat_outbox_publish_seconds_", "outbox relay: broker's part"), ("swiftchat_outbox_handoff_seconds_", "outbox hand-offs"),
        ("swiftchat_bus_batcher_seconds_", ""),
    ]

    init?(_ line: Substring) {
        guard let (metric, unqueued) = Self.timers.first(where: { line.hasPrefix($0.0) }) else { return nil }
        let name = line.dropFirst(metric.count)
        guard name.hasPrefix("sum") || name.hasPrefix("count"), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { return nil }
        isCount = name.hasPrefix("count")
        self.value = value
        // The queue's name without the namespace before its first dot (`bench_messages.`), or the
        // batcher's event type.
        if let queue = Self.label("queue", in: line) {
            stage = String(queue.split(separator: ".", maxSplits: 1).last ?? queue)
        } else if let type = Self.label("type", in: line) {
            stage = "\(type) batcher"
        } else {
            stage = unqueued
        }
    }

    /// A label's value: `name="…"` first or after a comma, so `queue` never matches `dead_queue`.
    private static func label(_ name: String, in line: Substring) -> Substring? {
        guard let open = line.range(of: "{\(name)=\"") ?? line.range(of: ",\(name)=\""),
            let close = line[open.upperBound...].firstIndex(of: "\"")
        else { return nil }
        return line[open.upperBound..<close]
    }
}
