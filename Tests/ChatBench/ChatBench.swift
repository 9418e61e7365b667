import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

/// `chat-bench`: N users on real websockets, sending at a fixed offered rate through the whole
/// path (socket-handler → RabbitMQ → messages → Postgres → RabbitMQ → socket-handler → the other
/// member). Open loop: a message's latency counts from when it was *scheduled*, so a slow system
/// cannot slow the load down and hide its own latency. Frames are encoded before the clock starts.
@main
struct ChatBench {
    struct Options {
        var users = 1_000
        var rate = 1_000.0
        var duration = 20.0
        var authURL = "http://127.0.0.1:18081"
        var messagesURL = "http://127.0.0.1:18083"
        var socketPorts = [18084, 18085]
        /// `name=pid,…` of the services, to report their CPU and memory over the send phase.
        var services: [(String, Int32)] = []

        init(arguments: [String]) throws {
            var iterator = arguments.dropFirst().makeIterator()
            while let flag = iterator.next() {
                guard let value = iterator.next() else { throw BenchError("\(flag) needs a value") }
                switch flag {
                case "--users": users = Int(value) ?? users
                case "--rate": rate = Double(value) ?? rate
                case "--duration": duration = Double(value) ?? duration
                case "--auth": authURL = value
                case "--messages": messagesURL = value
                case "--socket-ports": socketPorts = value.split(separator: ",").compactMap { Int($0) }
                case "--services":
                    services = value.split(separator: ",").compactMap { entry in
                        let parts = entry.split(separator: "=")
                        guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
                        return (String(parts[0]), pid)
                    }
                default: throw BenchError("unknown option \(flag)")
                }
            }
            guard users >= 2, users % 2 == 0, rate > 0, duration > 0, !socketPorts.isEmpty else {
                throw BenchError("--users must be even and at least 2; --rate and --duration positive")
            }
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func main() async throws {
        let options = try Options(arguments: CommandLine.arguments)
        let logger: Logger = {
            var logger = Logger(label: "chat-bench")
            logger.logLevel = .error
            return logger
        }()
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)

        // 1. Users and their conversations (pairs), through the public HTTP API.
        print("signing up \(options.users) users…")
        let tokens = try await concurrentMap(0..<options.users, width: 16) { index in
            let name = "bench_\(run)_\(index)"
            let (status, body) = await http("POST", "\(options.authURL)/api/auth/signup", body: #"{"username":"\#(name)","email":"\#(name)@bench.local","password":"benchmark password"}"#)
            guard status == 201, let token = body["accessToken"] as? String, let user = body["user"] as? [String: Any], let id = user["id"] as? String else {
                throw BenchError("signup failed: \(status)")
            }
            return (token, id)
        }
        print("opening \(options.users / 2) conversations…")
        let conversations = try await concurrentMap(0..<(options.users / 2), width: 16) { pair in
            let (token, _) = tokens[2 * pair]
            let other = tokens[2 * pair + 1].1
            for _ in 0..<100 {  // until messages has heard of both users
                let (status, body) = await http("POST", "\(options.messagesURL)/api/conversations", token: token, body: #"{"type":"direct","userId":"\#(other)"}"#)
                if status == 201 || status == 200, let id = (body["conversation"] as? [String: Any])?["id"] as? String { return id }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw BenchError("could not open a conversation")
        }

        // 2. Every frame, encoded before the clock starts. Message k goes from user k % N to its pair.
        let total = Int(options.rate * options.duration)
        let frames = (0..<total).map { k -> String in
            let sender = k % options.users
            return #"{"type":"send","clientMsgId":"b\#(k)","conversationId":"\#(conversations[sender / 2])","body":"bench message \#(k)"}"#
        }
        let state = BenchState(total: total, rate: options.rate)

        // 3. Sockets: one per user, spread over the socket-handler instances.
        print("connecting \(options.users) websockets…")
        try await withThrowingTaskGroup(of: Void.self) { group in
            var outboxes: [AsyncStream<Int>.Continuation] = []
            for user in 0..<options.users {
                let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
                outboxes.append(continuation)
                let port = options.socketPorts[user % options.socketPorts.count]
                let token = tokens[user].0
                group.addTask {
                    try await WebSocketClient.connect(
                        url: "ws://127.0.0.1:\(port)/ws/chat",
                        configuration: .init(maxFrameSize: 1 << 16, additionalHeaders: [.authorization: "Bearer \(token)"]),
                        logger: logger
                    ) { inbound, outbound, _ in
                        state.connected()
                        try await withThrowingTaskGroup(of: Void.self) { connection in
                            connection.addTask {
                                for await k in stream { try await outbound.writeTextMessage(frames[k]) }
                                try await outbound.close(.normalClosure, reason: nil)
                            }
                            for try await message in inbound.messages(maxSize: 1 << 16) {
                                if case .text(let text) = message { state.received(text, by: user) }
                            }
                            connection.cancelAll()
                        }
                    }
                }
            }
            let connectDeadline = ContinuousClock.now + .seconds(60)
            while state.connectedCount < options.users {
                guard ContinuousClock.now < connectDeadline else { throw BenchError("only \(state.connectedCount) sockets connected") }
                try await Task.sleep(for: .milliseconds(50))
            }

            // 4. The open-loop schedule: message k is due at start + k / rate, whatever happened before.
            print("sending \(total) messages at \(Int(options.rate))/s for \(Int(options.duration)) s…")
            let start = ContinuousClock.now
            let cpuBefore = options.services.map { ProcessStats.cpuSeconds(of: $0.1) }
            state.start(at: start)
            var next = 0
            while next < total {
                let now = ContinuousClock.now
                while next < total, start + .seconds(Double(next) / options.rate) <= now {
                    outboxes[next % options.users].yield(next)
                    next += 1
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            // 5. Drain, then report.
            let drainDeadline = ContinuousClock.now + .seconds(15)
            while state.deliveredCount < total, ContinuousClock.now < drainDeadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            state.report(rate: options.rate, duration: options.duration, users: options.users)
            let wall = ContinuousClock.now - start
            let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
            for ((name, pid), before) in zip(options.services, cpuBefore) {
                let used = ProcessStats.cpuSeconds(of: pid) - before
                let label = name.padding(toLength: 18, withPad: " ", startingAt: 0)
                print(label + String(format: "CPU %5.1f%% of one core, RSS %6.1f MiB", 100 * used / wallSeconds, ProcessStats.residentMiB(of: pid)))
            }
            for outbox in outboxes { outbox.finish() }
            group.cancelAll()
        }
    }
}

/// Counters and latencies, shared by every connection.
final class BenchState: Sendable {
    private struct Values {
        var start: ContinuousClock.Instant?
        var latencies: [Double]  // milliseconds from scheduled send to delivery at the other member; -1 = not yet
        var delivered = 0
        var acked = 0
        var errors = 0
        var lastDelivery: ContinuousClock.Instant?
    }

    private let values: Mutex<Values>
    private let connections = Atomic<Int>(0)
    /// Offered messages per second: message k is scheduled at start + k / rate.
    private let rate: Double

    init(total: Int, rate: Double) {
        values = Mutex(Values(latencies: Array(repeating: -1, count: total)))
        self.rate = rate
    }

    func connected() { connections.add(1, ordering: .relaxed) }
    var connectedCount: Int { connections.load(ordering: .relaxed) }
    var deliveredCount: Int { values.withLock { $0.delivered } }

    func start(at instant: ContinuousClock.Instant) { values.withLock { $0.start = instant } }

    /// Finds the message number in a frame without parsing the JSON: `"clientMsgId":"b<k>"`.
    func received(_ text: String, by user: Int) {
        let now = ContinuousClock.now
        let isMessage = text.contains(#""type":"message""#)
        let isAck = !isMessage && text.contains(#""type":"ack""#)
        guard isMessage || isAck else {
            if text.contains(#""type":"error""#) { values.withLock { $0.errors += 1 } }
            return
        }
        guard let range = text.range(of: #""clientMsgId":"b"#) else { return }
        let k = Int(text[range.upperBound...].prefix { $0.isNumber }) ?? -1
        values.withLock { values in
            if isAck { values.acked += 1; return }
            guard let start = values.start, k >= 0, k < values.latencies.count, values.latencies[k] < 0 else { return }
            let scheduled = start + .seconds(Double(k) / rate)
            let latency = now - scheduled
            values.latencies[k] = Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15
            values.delivered += 1
            values.lastDelivery = now
        }
    }

    func report(rate: Double, duration: Double, users: Int) {
        values.withLock { values in
            let total = values.latencies.count
            let delivered = values.latencies.filter { $0 >= 0 }.sorted()
            func percentile(_ p: Double) -> String {
                guard !delivered.isEmpty else { return "-" }
                return String(format: "%.1f", delivered[min(delivered.count - 1, Int(Double(delivered.count) * p))])
            }
            let span = values.start.flatMap { start in values.lastDelivery.map { $0 - start } } ?? .zero
            let seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
            print("")
            print("users \(users), offered \(Int(rate)) msg/s for \(Int(duration)) s: \(total) messages")
            print(String(format: "delivered %d (%.1f%%), lost %d, delivered/s %.0f, acks %d, error frames %d",
                         delivered.count, 100 * Double(delivered.count) / Double(max(1, total)), total - delivered.count,
                         Double(delivered.count) / max(seconds, 0.001), values.acked, values.errors))
            print("end-to-end latency ms (from scheduled send): p50 \(percentile(0.5))  p99 \(percentile(0.99))  p999 \(percentile(0.999))  max \(delivered.last.map { String(format: "%.1f", $0) } ?? "-")")
        }
    }
}

/// CPU time and resident memory of another process, from /proc.
enum ProcessStats {
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func residentMiB(of pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib / 1024
    }
}

/// `transform` over `items`, `width` at a time, results in order.
func concurrentMap<Element: Sendable>(_ items: Range<Int>, width: Int, _ transform: @escaping @Sendable (Int) async throws -> Element) async throws -> [Element] {
    try await withThrowingTaskGroup(of: (Int, Element).self) { group in
        var results = [Element?](repeating: nil, count: items.count)
        var iterator = items.makeIterator()
        for _ in 0..<width { if let index = iterator.next() { group.addTask { (index, try await transform(index)) } } }
        while let (index, value) = try await group.next() {
            results[index - items.lowerBound] = value
            if let next = iterator.next() { group.addTask { (next, try await transform(next)) } }
        }
        return results.map { $0! }
    }
}

/// No cookie jar: the bench is a bearer-token client (cookies without an Origin are refused).
let session: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpShouldSetCookies = false
    configuration.httpCookieAcceptPolicy = .never
    return URLSession(configuration: configuration)
}()

func http(_ method: String, _ url: String, token: String? = nil, body: String? = nil) async -> (Int, [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    if let body {
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
    }
    return await withCheckedContinuation { continuation in
        session.dataTask(with: request) { data, response, _ in
            let object = data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
            continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, object))
        }.resume()
    }
}
