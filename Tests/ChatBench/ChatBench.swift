import Foundation
import Synchronization

/// `chat-bench`: the load generator of `make bench` (infra/bench.sh). One phase per run:
///
/// - `rate`: N users on real websockets, in pairs, sending at a fixed offered rate through the whole
///   path (socket-handler → RabbitMQ → messages → Postgres → RabbitMQ → socket-handler → the other
///   member). Open loop: a message's latency counts from when it was *scheduled*, so a slow system
///   cannot slow the load down and hide its own latency. Frames are encoded before the clock starts.
/// - `idle`: the resident memory one idle authenticated socket costs a socket-handler instance.
/// - `catchup`: 5,000 stored messages of one conversation fetched in pages, one after another and
///   all at once by seq range (`CatchUpReader`).
/// - `fanout`: one message to a group of 1,024 members, all online: when the last copy arrives.
/// - `summary`: the rate phases' results (`--results`) as one table, with the highest offered rate
///   at which every message was delivered and acked with p99 ≤ 50 ms.
///
/// Every phase prints the CPU and memory of the watched processes (services, Postgres, RabbitMQ,
/// Redis, the load generator) over its measured part.
@main
struct ChatBench {
    struct Options {
        var phase = "rate"
        var users = 1_000
        var rate = 1_000.0
        var duration = 20.0
        var sockets = 10_000
        var groupSize = 1_024
        var messages = 5_000
        var authURL = "http://127.0.0.1:18081"
        var messagesURL = "http://127.0.0.1:18083"
        var socketPorts = [18084, 18085]
        /// How often the rate phase's broker probe publishes (`BrokerProbe`); zero: no probe.
        var probeEvery: Duration = .milliseconds(10)
        /// `name=pid[+]`: watched processes; a `+` counts the process's children too (Postgres).
        var watched: [WatchedProcess] = []
        /// `name=port`: services whose stage timers (`/metrics`) are read over each phase.
        var stages: [(name: String, port: Int)] = []
        /// A file of rate results: each rate phase appends its own, the summary phase reads them.
        var results: String?

        init(arguments: [String]) throws {
            var iterator = arguments.dropFirst().makeIterator()
            while let flag = iterator.next() {
                guard let value = iterator.next() else { throw BenchError("\(flag) needs a value") }
                switch flag {
                case "--phase": phase = value
                case "--users": users = try Self.number(value, of: flag)
                case "--rate": rate = try Self.number(value, of: flag)
                case "--duration": duration = try Self.number(value, of: flag)
                case "--sockets": sockets = try Self.number(value, of: flag)
                case "--group-size": groupSize = try Self.number(value, of: flag)
                case "--messages": messages = try Self.number(value, of: flag)
                case "--auth": authURL = value
                case "--messages-url": messagesURL = value
                case "--socket-ports": socketPorts = try value.split(separator: ",").map { try Self.number(String($0), of: flag) }
                case "--probe-every": probeEvery = .milliseconds(try Self.number(value, of: flag) as Int)
                case "--watch":
                    watched = Self.pairs(value).compactMap { name, pid in
                        let children = pid.hasSuffix("+")
                        guard let pid = Int32(pid.trimmingCharacters(in: CharacterSet(charactersIn: "+"))) else { return nil }
                        return WatchedProcess(name: name, pid: pid, withChildren: children)
                    }
                case "--results": results = value
                case "--stages": stages = Self.pairs(value).compactMap { name, port in Int(port).map { (name, $0) } }
                default: throw BenchError("unknown option \(flag)")
                }
            }
            guard users >= 2, users % 2 == 0, rate > 0, duration > 0, messages > 0, !socketPorts.isEmpty, probeEvery >= .zero else {
                throw BenchError("--users must be even and at least 2; --rate, --duration and --messages positive; --probe-every 0 or more")
            }
            watched.append(WatchedProcess(name: "chat-bench (load)", pid: getpid(), withChildren: false))
        }

        /// `value` as a number: a typo stops the bench rather than running a load nobody asked for.
        private static func number<Number: LosslessStringConvertible>(_ value: String, of flag: String) throws -> Number {
            guard let number = Number(value) else { throw BenchError("\(flag) takes a number, not \(value)") }
            return number
        }

        /// `name=value,name=value`: the pairs, malformed entries left out.
        private static func pairs(_ list: String) -> [(name: String, value: Substring)] {
            list.split(separator: ",").compactMap { entry in
                let parts = entry.split(separator: "=")
                return parts.count == 2 ? (String(parts[0]), parts[1]) : nil
            }
        }
    }

    static func main() async {
        do {
            let options = try Options(arguments: CommandLine.arguments)
            let bench = Bench(options: options)
            switch options.phase {
            case "rate": try await bench.rate()
            case "idle": try await bench.idleSockets()
            case "catchup": try await bench.catchUp()
            case "fanout": try await bench.fanOut()
            case "summary": try bench.summary()
            default: throw BenchError("unknown phase \(options.phase): rate, idle, catchup, fanout or summary")
            }
        } catch {
            print("chat-bench: \(error)")
            exit(1)
        }
    }
}

struct Bench {
    let options: ChatBench.Options
    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    var fleet: SocketFleet { SocketFleet(ports: options.socketPorts) }

    /// New users through the public API: their bearer tokens and ids.
    func signUp(_ count: Int) async throws -> [(token: String, id: String)] {
        try await concurrentMap(0..<count, width: 16) { [run] index in
            let name = "bench_\(run)_\(index)"
            let (status, body) = await http(
                "POST", "\(options.authURL)/api/auth/signup", body: #"{"username":"\#(name)","email":"\#(name)@bench.local","password":"benchmark password"}"#)
            guard status == 201, let token = body["accessToken"] as? String, let user = body["user"] as? [String: Any], let id = user["id"] as? String else {
                throw BenchError("signup failed: \(status)")
            }
            return (token, id)
        }
    }

    /// Creates a conversation, retrying while messages has not yet heard of the users.
    func conversation(token: String, body: String) async throws -> String {
        for _ in 0..<100 {
            let (status, answer) = await http("POST", "\(options.messagesURL)/api/conversations", token: token, body: body)
            if status == 201 || status == 200, let id = (answer["conversation"] as? [String: Any])?["id"] as? String { return id }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("could not create a conversation")
    }

    // MARK: rate

    func rate() async throws {
        print("signing up \(options.users) users…")
        let users = try await signUp(options.users)
        print("opening \(options.users / 2) conversations…")
        let conversations = try await concurrentMap(0..<(options.users / 2), width: 16) { pair in
            try await conversation(token: users[2 * pair].token, body: #"{"type":"direct","userId":"\#(users[2 * pair + 1].id)"}"#)
        }
        // Every frame, encoded before the clock starts. Message k goes from user k % N to its pair.
        let total = Int(options.rate * options.duration)
        let frames = (0..<total).map { k -> (socket: Int, text: String) in
            let conversation = conversations[(k % options.users) / 2]
            return (k % options.users, #"{"type":"send","clientMsgId":"b\#(k)","conversationId":"\#(conversation)","body":"bench message \#(k)"}"#)
        }
        let state = LatencyState(total: total, rate: options.rate)
        let probe = options.probeEvery > .zero ? try BrokerProbe(every: options.probeEvery) : nil
        print("connecting \(options.users) websockets…")
        try await fleet.run(count: options.users, token: { users[$0].token }, received: { _, text in state.received(text) }) { sockets in
            let settled = await ProcessStats.settle(options.watched)
            print("the stack settled after the setup in \(settled)")
            print("sending \(total) messages at \(Int(options.rate))/s for \(Int(options.duration)) s…")
            let schedule = sockets.schedule(frames, rate: options.rate)
            let stages = await StageWindow.open(options.stages)
            // The CPU window first: reading every thread's counters takes milliseconds, and it must
            // not sit between the start and the wall-clock date taken with it (`sentAt` splits).
            let cpu = CPUWindow(options.watched)
            let start = ContinuousClock.now
            state.start(at: start)
            async let brokerTimes = probe?.measure(for: .seconds(options.duration))
            try await sockets.send(schedule, from: start)
            let drainDeadline = ContinuousClock.now + .seconds(15)
            // Until every message is delivered and acked: an ack may come after every delivery.
            while !state.isSettled, ContinuousClock.now < drainDeadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            var result = state.report(rate: options.rate, duration: options.duration, users: options.users)
            if let probe, let times = await brokerTimes { probe.report(times) }
            (result.cpuPerMessage, result.busy, result.steal) = cpu.report(delivered: state.deliveredCount)
            await stages.report()
            if let file = options.results { try result.append(to: file) }
        }
    }

    // MARK: summary

    /// Every rate phase's headline in one table (`--results`), and the highest rate that met the
    /// target.
    func summary() throws {
        guard let file = options.results else { throw BenchError("the summary phase needs --results") }
        RateSummary(results: try RateSummary.results(in: file)).report.forEach { print($0) }
    }

    // MARK: idle

    /// Opens `sockets` idle sockets on the first socket-handler instance (the first watched
    /// process), spread over the users, and prints what each costs in resident memory.
    func idleSockets() async throws {
        guard let instance = options.watched.first else { throw BenchError("--watch must name the socket-handler first") }
        let perUser = 10
        let count = options.sockets
        print("signing up \((count + perUser - 1) / perUser) users…")
        let users = try await signUp((count + perUser - 1) / perUser)
        let before = ProcessStats.residentMiB(of: instance)
        let single = SocketFleet(ports: [options.socketPorts[0]])
        print("opening \(count) idle sockets on one instance…")
        let opening = ContinuousClock.now
        try await single.run(count: count, token: { users[$0 / perUser].token }, received: { _, _ in }) { _ in
            print(String(format: "all %d open after %.1f s", count, (ContinuousClock.now - opening).seconds))
            // Let the instance settle (presence registration, buffers) before reading its memory.
            try await Task.sleep(for: .seconds(5))
            let after = ProcessStats.residentMiB(of: instance)
            print(
                String(
                    format: "idle sockets: %d; %@ RSS %.1f MiB before, %.1f MiB with them: %.1f KiB per socket (goal ≤ 12 KiB)",
                    count, instance.name, before, after, (after - before) * 1024 / Double(count)))
        }
    }

    // MARK: catchup

    /// One conversation with `messages` stored messages, fetched in pages of 1,000 in two ways,
    /// five rounds each, taking turns, every round's time printed: one page after another by
    /// `after`, as a client that knows only what it holds does, and all pages at once by seq range,
    /// as a client that knows the conversation's `lastSeq` (every conversation object carries it)
    /// can.
    func catchUp() async throws {
        let users = try await signUp(2)
        let conversation = try await conversation(token: users[0].token, body: #"{"type":"direct","userId":"\#(users[1].id)"}"#)
        print("storing \(options.messages) messages…")
        _ = try await concurrentMap(0..<options.messages, width: 32) { k in
            let (status, _) = await http(
                "POST", "\(options.messagesURL)/api/conversations/\(conversation)/messages", token: users[0].token,
                body: #"{"clientMsgId":"c\#(k)","body":"catch-up message number \#(k) with a few words in it"}"#
            )
            guard status == 201 || status == 200 else { throw BenchError("store failed: \(status)") }
            return status
        }
        let reader = CatchUpReader(url: "\(options.messagesURL)/api/conversations/\(conversation)", token: users[1].token)
        // The two ways take turns, each going first in every other round, so neither gets the
        // warmer connections or the quieter minute.
        var rounds: [CatchUpReader.Way: [CatchUpReader.Round]] = [:]
        for turn in 0..<5 {
            let ways = CatchUpReader.Way.allCases
            for way in turn.isMultiple(of: 2) ? ways : ways.reversed() {
                let round = try await reader.fetchAll(way)
                guard round.seqs == Array(1...options.messages) else {
                    throw BenchError("caught up \(round.seqs.count) of \(options.messages) (\(way.rawValue)), or not each once in seq order")
                }
                rounds[way, default: []].append(round)
            }
        }
        for way in CatchUpReader.Way.allCases {
            let wayRounds = rounds[way, default: []]
            let best = wayRounds.min { $0.total < $1.total }!
            // Pages fetched at once are decoded side by side: their times overlap, so they are a sum,
            // not a part of the total.
            let decoding =
                switch way {
                case .sequential: String(format: "of which %.1f ms decoding", best.decoding)
                case .concurrent: String(format: "its pages' decoding %.1f ms added up (side by side)", best.decoding)
                }
            print(
                String(
                    format: "catch-up of %d messages (pages of %d, %@): %@ ms; best %.1f ms, %@ (goal ≤ 100 ms)",
                    options.messages, CatchUpReader.pageSize, way.rawValue,
                    wayRounds.map { String(format: "%.1f", $0.total) }.joined(separator: ", "), best.total, decoding))
        }
    }

    // MARK: fanout

    /// A group of `groupSize` members, one socket each, created once every socket is open (so the
    /// members get its `conversation` frame, which lists them all, live, as they would); the
    /// creator sends 20 messages 250 ms apart, and each one's last copy is timed from its send.
    func fanOut() async throws {
        let size = options.groupSize
        print("signing up \(size) users…")
        let users = try await signUp(size)
        let memberIds = users.dropFirst().map { #""\#($0.id)""# }.joined(separator: ",")
        let rounds = 20
        // Per message: copies received so far; when the sender's ack, the first copy and the last
        // copy arrived (ack and first copy: the path; first to last: the spread over the sockets).
        struct Arrivals {
            var copies: [Int]
            var ack, first, last: [ContinuousClock.Instant?]
            var senderErrors: [String] = []
            var warmUpCopies: [Int: Int] = [:]
            /// The stored time in each ack (when messages began storing it), and when the ack came.
            var storedAt, ackedAt: [Date?]
        }
        let none = [ContinuousClock.Instant?](repeating: nil, count: rounds)
        let arrivals = Mutex(
            Arrivals(
                copies: Array(repeating: 0, count: rounds), ack: none, first: none, last: none,
                storedAt: Array(repeating: nil, count: rounds), ackedAt: Array(repeating: nil, count: rounds)))
        print("connecting \(size) members…")
        try await fleet.run(
            count: size, token: { users[$0].token },
            received: { socket, text in
                let kind = FrameKind(text)
                if socket == 0, kind == .error { arrivals.withLock { $0.senderErrors.append(text) } }
                if socket != 0, kind == .message, let j = messageNumber(in: text, prefix: "w") {
                    arrivals.withLock { $0.warmUpCopies[j, default: 0] += 1 }
                    return
                }
                guard kind == .message || kind == .ack, let k = messageNumber(in: text, prefix: "f"), k < rounds else { return }
                let now = ContinuousClock.now
                arrivals.withLock { arrivals in
                    if socket == 0 {
                        if kind == .ack {
                            arrivals.ack[k] = now
                            arrivals.ackedAt[k] = Date()
                            arrivals.storedAt[k] = storedTime(in: text)
                        }
                        return
                    }
                    guard kind == .message else { return }
                    arrivals.copies[k] += 1
                    if arrivals.copies[k] == 1 { arrivals.first[k] = now }
                    if arrivals.copies[k] == size - 1 { arrivals.last[k] = now }
                }
            }
        ) { sockets in
            let group = try await conversation(token: users[0].token, body: #"{"type":"group","name":"fan-out","memberIds":[\#(memberIds)]}"#)
            // A socket counts as connected when its upgrade is done, a moment before its instance has
            // announced it in the presence registry: warm-up messages go out until one reaches everyone.
            var warmed = false
            for j in 0..<10 where !warmed {
                sockets.send(#"{"type":"send","clientMsgId":"w\#(j)","conversationId":"\#(group)","body":"warming up"}"#, on: 0)
                let deadline = ContinuousClock.now + .seconds(1)
                while !warmed, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                    warmed = arrivals.withLock { $0.warmUpCopies[j, default: 0] == size - 1 }
                }
            }
            if !warmed { print("no warm-up message reached all \(size - 1) members within 10 s") }
            let stages = await StageWindow.open(options.stages)
            let cpu = CPUWindow(options.watched)
            var sentAt: [ContinuousClock.Instant] = []
            var sentAtWall: [Date] = []
            for k in 0..<rounds {
                sentAt.append(.now)
                sentAtWall.append(Date())
                sockets.send(#"{"type":"send","clientMsgId":"f\#(k)","conversationId":"\#(group)","body":"to all \#(size) of us, number \#(k)"}"#, on: 0)
                try await Task.sleep(for: .milliseconds(250))
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while arrivals.withLock({ $0.last.contains(nil) }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let arrived = arrivals.withLock { $0 }
            /// Milliseconds from each send to `times`, sorted; and their median (-1 for none).
            func latencies(_ times: [ContinuousClock.Instant?]) -> [Double] {
                zip(sentAt, times).compactMap { sent, at in at.map { ($0 - sent).inMilliseconds } }.sorted()
            }
            func median(_ sorted: [Double]) -> Double { sorted.isEmpty ? -1 : sorted[sorted.count / 2] }
            let lasts = latencies(arrived.last)
            print(
                String(
                    format: "fan-out to %d members: %d of %d messages reached everyone; last copy p50 %.1f ms, max %.1f ms (goal ≤ 100 ms); "
                        + "p50 ack %.1f ms, first copy %.1f ms",
                    size, lasts.count, rounds, median(lasts), lasts.last ?? -1, median(latencies(arrived.ack)), median(latencies(arrived.first))))
            let short = arrived.last.indices.filter { arrived.last[$0] == nil }
            if !short.isEmpty {
                print("not everyone got message(s) \(short): \(short.map { size - 1 - arrived.copies[$0] }) copies missing")
            }
            // The path split at the stored time messages wrote into the message (the same clock):
            // before it, socket-handler, the broker and messages' consumer; after it, the store,
            // the outbox relay, the broker, the router and the sender's instance.
            var toStored: [Double] = [], storedToAck: [Double] = []
            for k in 0..<rounds {
                guard let stored = arrived.storedAt[k], let acked = arrived.ackedAt[k] else { continue }
                toStored.append(stored.timeIntervalSince(sentAtWall[k]) * 1000)
                storedToAck.append(acked.timeIntervalSince(stored) * 1000)
            }
            if !toStored.isEmpty {
                print(
                    String(
                        format: "the sender's path, p50: send → stored %.1f ms, stored → ack %.1f ms", median(toStored.sorted()),
                        median(storedToAck.sorted())))
            }
            if let error = arrived.senderErrors.first { print("the sender got \(arrived.senderErrors.count) error frames, the first: \(error)") }
            cpu.report(delivered: arrivals.withLock { $0.copies.reduce(0, +) })
            await stages.report()
        }
    }
}

/// Counters and latencies of the rate phase, shared by every connection.
final class LatencyState: Sendable {
    private struct Values {
        var start: ContinuousClock.Instant?
        var delivered: [Double]  // ms from scheduled send to delivery at the other member; -1 = not yet
        var acked: [Double]  // ms from scheduled send to the sender's ack
        var deliveredCount = 0
        var ackedCount = 0
        var errors = 0
        var lastDelivery: ContinuousClock.Instant?
        var startDate = Date()
        // Where a delivery's time went, for one message in `splitSample`: before the messages
        // service stored it (its `sentAt`) and after.
        var beforeStored: [Double] = []
        var afterStored: [Double] = []
    }

    /// One message in this many has its delivery split at `sentAt` (reading the date costs the
    /// load generator time it shares with what it measures).
    private static let splitSample = 16

    private let values: Mutex<Values>
    private let rate: Double

    init(total: Int, rate: Double) {
        values = Mutex(Values(delivered: Array(repeating: -1, count: total), acked: Array(repeating: -1, count: total)))
        self.rate = rate
    }

    var deliveredCount: Int { values.withLock { $0.deliveredCount } }

    /// Every message delivered to its recipient and acked to its sender.
    var isSettled: Bool {
        values.withLock { $0.deliveredCount == $0.delivered.count && $0.ackedCount == $0.acked.count }
    }

    func start(at instant: ContinuousClock.Instant) {
        values.withLock {
            $0.start = instant
            $0.startDate = Date()
        }
    }

    func received(_ text: String) {
        let now = ContinuousClock.now
        let kind = FrameKind(text)
        guard kind == .message || kind == .ack else {
            if kind == .error { values.withLock { $0.errors += 1 } }
            return
        }
        guard let k = messageNumber(in: text, prefix: "b") else { return }
        let storedAt = kind == .message && k % Self.splitSample == 0 ? storedTime(in: text) : nil
        let nowDate = storedAt == nil ? nil : Date()
        values.withLock { values in
            guard let start = values.start, k >= 0, k < values.delivered.count else { return }
            let latency = (now - (start + .seconds(Double(k) / rate))).inMilliseconds
            if kind == .ack {
                if values.acked[k] < 0 {
                    values.acked[k] = latency
                    values.ackedCount += 1
                }
            } else if values.delivered[k] < 0 {
                values.delivered[k] = latency
                if let storedAt, let nowDate {
                    let scheduled = values.startDate.addingTimeInterval(Double(k) / rate)
                    values.beforeStored.append(storedAt.timeIntervalSince(scheduled) * 1000)
                    values.afterStored.append(nowDate.timeIntervalSince(storedAt) * 1000)
                }
                values.deliveredCount += 1
                values.lastDelivery = now
            }
        }
    }

    /// Prints the phase's latencies and returns its headline (the CPU and the machine's figures
    /// are the caller's).
    func report(rate: Double, duration: Double, users: Int) -> RateResult {
        values.withLock { values in
            let total = values.delivered.count
            let delivered = values.delivered.filter { $0 >= 0 }.sorted()
            let acked = values.acked.filter { $0 >= 0 }.sorted()
            func percentile(_ sorted: [Double], _ p: Double) -> String { formatted(sorted.percentile(p)) }
            let span = values.start.flatMap { start in values.lastDelivery.map { $0 - start } } ?? .zero
            let result = RateResult(
                offered: Int(rate), messages: total, delivered: delivered.count, acked: acked.count,
                deliveredPerSecond: Double(delivered.count) / max(span.seconds, 0.001), p50: delivered.percentile(0.5),
                p99: delivered.percentile(0.99), p999: delivered.percentile(0.999), ackP50: acked.percentile(0.5), ackP99: acked.percentile(0.99))
            print("")
            print("users \(users), offered \(Int(rate)) msg/s for \(Int(duration)) s: \(total) messages")
            print(
                String(
                    format: "delivered %d (%.2f%%), lost %d, delivered/s %.0f, acked %d, error frames %d",
                    result.delivered, 100 * Double(result.delivered) / Double(max(1, total)), result.lost, result.deliveredPerSecond, result.acked,
                    values.errors))
            print(
                "sender → recipient ms (from scheduled send): p50 \(formatted(result.p50))  p99 \(formatted(result.p99))  p999 \(formatted(result.p999))  max \(formatted(delivered.last))"
            )
            print(
                "ack ms (from scheduled send):                p50 \(formatted(result.ackP50))  p99 \(formatted(result.ackP99))  p999 \(percentile(acked, 0.999))"
            )
            // p99 of each second's messages (by scheduled time): one stall shows as one bad second,
            // a machine that cannot keep up as a rising line.
            let perSecond = max(1, Int(rate))
            let seconds = stride(from: 0, to: total, by: perSecond).map { first -> String in
                percentile(values.delivered[first..<min(total, first + perSecond)].filter { $0 >= 0 }.sorted(), 0.99)
            }
            // The wall-clock start, so a bad second can be matched with the servers' own logs.
            let began = values.startDate.formatted(.iso8601.time(includingFractionalSeconds: true))
            print("p99 ms by second of sending (the first from \(began) UTC): \(seconds.joined(separator: " "))")
            let before = values.beforeStored.sorted()
            let after = values.afterStored.sorted()
            print(
                "split at sentAt (1 in \(Self.splitSample)):       scheduled → stored p50 \(percentile(before, 0.5)) p99 \(percentile(before, 0.99)); stored → delivered p50 \(percentile(after, 0.5)) p99 \(percentile(after, 0.99))"
            )
            return result
        }
    }
}

/// The `sentAt` of the message in an ack frame.
func storedTime(in text: String) -> Date? {
    guard let range = text.range(of: #""sentAt":""#) else { return nil }
    let start = range.upperBound
    guard let end = text[start...].firstIndex(of: "\"") else { return nil }
    return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(String(text[start..<end]))
}
