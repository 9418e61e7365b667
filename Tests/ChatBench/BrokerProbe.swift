import EventBus
import Foundation
import Logging
import ServiceConfig

/// The broker's own latency while a phase runs: one small confirmed publish every `every` (10 ms
/// unless `--probe-every` says otherwise) into a quorum queue of the probe's own, through the
/// services' `EventPublisher`. A quorum queue hands a message to its consumers once it has
/// committed it, which is when it confirms it, so each hop a chat message makes through the broker
/// waits about this long at that load (plus the wait for the batch before it, on a publisher). Its
/// load on the broker is up to 100 messages a second at 10 ms (fewer when confirms take longer): a
/// seventh to a fifth of what is published to it at 5,000 msg/s.
struct BrokerProbe: Sendable {
    static let queue = "bench.broker-probe"
    let every: Duration
    let configuration: AMQPConfiguration

    /// The local stack's broker as the environment names it (`AMQP_*`; `make bench` sets the
    /// virtual host to its own).
    init(every: Duration) throws {
        self.every = every
        configuration = try AMQPConfiguration(environment: EnvironmentReader())
    }

    /// Publishes for `duration`; returns each confirm's time, in ms (none if the broker could not
    /// be reached: the line then says so).
    func measure(for duration: Duration) async -> [Double] {
        var logger = Logger(label: "broker-probe")
        logger.logLevel = .error
        let publisher = EventPublisher(configuration: configuration, logger: logger)
        var times: [Double] = []
        do {
            try await EventBusAdmin.declare(Topology(queues: [QueueSpec(name: Self.queue, bindings: [])]), configuration: configuration)
            let end = ContinuousClock.now + duration
            var sequence = 0
            while ContinuousClock.now < end {
                sequence += 1
                let message = OutgoingMessage(
                    exchange: "", routingKey: Self.queue, messageId: "probe-\(sequence)", type: "bench.probe", body: Data(#"{"probe":true}"#.utf8))
                let started = ContinuousClock.now
                let outcomes = try await publisher.publish([message])
                guard outcomes == [.confirmed] else {
                    print("the broker probe stopped: the broker answered \(outcomes)")
                    break
                }
                times.append((ContinuousClock.now - started).inMilliseconds)
                try await Task.sleep(until: started + every)
            }
            try await EventBusAdmin.deleteQueues([Self.queue], configuration: configuration)
        } catch is CancellationError {
            // The phase failed and is ending.
        } catch {
            print("the broker probe stopped: \(error)")
        }
        await publisher.shutdown()
        return times
    }

    /// One line: the confirms' p50, p90, p99 and maximum.
    func report(_ times: [Double]) {
        let sorted = times.sorted()
        guard let p50 = sorted.percentile(0.5), let p90 = sorted.percentile(0.9), let p99 = sorted.percentile(0.99), let max = sorted.last else {
            return print("broker probe: no confirmed publish")
        }
        print(
            String(
                format: "broker, a lone confirmed publish every %.0f ms into a quorum queue (%d): ms p50 %.1f  p90 %.1f  p99 %.1f  max %.1f",
                every.inMilliseconds, sorted.count, p50, p90, p99, max))
    }
}
