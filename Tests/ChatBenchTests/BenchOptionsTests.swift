import Testing

@testable import ChatBench

/// The load generator's options (`make bench` passes them from its environment): a typo must stop
/// the bench, not run another load under the asked-for name.
@Suite("Load generator options")
struct BenchOptionsTests {
    @Test("numbers are taken as given; one that is not a number, a negative probe interval or no messages to catch up on, stops the bench")
    func numbers() throws {
        let options = try ChatBench.Options(arguments: [
            "chat-bench", "--users", "200", "--rate", "2500", "--duration", "5", "--probe-every", "0", "--socket-ports", "18084,18085",
        ])
        #expect(options.users == 200)
        #expect(options.rate == 2500)
        #expect(options.duration == 5)
        #expect(options.probeEvery == .zero)
        #expect(options.socketPorts == [18084, 18085])
        #expect(try ChatBench.Options(arguments: ["chat-bench"]).probeEvery == .milliseconds(10))
        for arguments in [
            ["--rate", "5k"], ["--users", "ten"], ["--probe-every", "off"], ["--probe-every", "-1"], ["--socket-ports", "18084,x"], ["--messages", "0"],
        ] {
            #expect(throws: BenchError.self, "\(arguments)") { try ChatBench.Options(arguments: ["chat-bench"] + arguments) }
        }
    }
}
