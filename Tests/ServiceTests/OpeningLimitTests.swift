import Hummingbird
import HummingbirdTesting
import ServiceHTTP
import StackTesting
import Testing

/// A live-socket server lets a bounded number of connections open at once (issue 9: the memory of
/// a burst of handshakes); the rest wait in the listen backlog, and nothing waits forever.
@Suite("live-socket servers open a bounded number of connections at once")
struct OpeningLimitTests {
    @Test("at the limit nothing more is accepted until an opening connection decides (an upgrade, a request) or closes")
    func acceptingWaitsForADecisionOrAClose() async throws {
        let openings = OpeningLimit(limit: 2, deadline: .seconds(120))
        try await Self.withServer(openings) { port in
            // Two connections that have sent nothing yet fill the limit.
            let first = try await RawConnection.open(port: port)
            let second = try await RawConnection.open(port: port)
            #expect(await eventually { openings.opening == 2 })

            // A third gets through the kernel's handshake and waits in its accept queue, not
            // accepted by the server.
            let third = try await RawConnection.open(port: port)
            try await third.send(RawConnection.plainRequest(port: port))
            #expect(await eventually { openings.isHolding && RawConnection.acceptQueue(port: port) == 1 })
            #expect(third.received.isEmpty)

            // The first upgrades: decided, so the third is accepted and answered.
            try await first.send(RawConnection.upgradeRequest(port: port, path: "/ws/test"))
            #expect(await eventually { first.received.hasPrefix("HTTP/1.1 101") })
            #expect(await eventually { third.received.hasPrefix("HTTP/1.1 200") })
            #expect(await eventually { openings.opening == 1 && !openings.isHolding })

            // A fourth fills the limit again; the next waits until the fourth closes.
            let fourth = try await RawConnection.open(port: port)
            #expect(await eventually { openings.opening == 2 })
            let fifth = try await RawConnection.open(port: port)
            try await fifth.send(RawConnection.plainRequest(port: port))
            #expect(await eventually { openings.isHolding && RawConnection.acceptQueue(port: port) == 1 })
            #expect(fifth.received.isEmpty)
            await fourth.close()
            #expect(await eventually { fifth.received.hasPrefix("HTTP/1.1 200") })
            #expect(RawConnection.acceptQueue(port: port) == 0)
            #expect(second.isOpen, "a connection still opening is not closed by the limit")

            for connection in [first, second, third, fifth] { await connection.close() }
            #expect(await eventually { openings.opening == 0 })
        }
    }

    @Test("a connection that sends nothing stops counting at its deadline, and stays open")
    func silentConnectionsStopCountingAtTheirDeadline() async throws {
        let openings = OpeningLimit(limit: 2, deadline: .seconds(1))
        try await Self.withServer(openings) { port in
            let silent = [try await RawConnection.open(port: port), try await RawConnection.open(port: port)]
            #expect(await eventually { openings.opening == 2 })
            let waiting = try await RawConnection.open(port: port)
            try await waiting.send(RawConnection.plainRequest(port: port))
            #expect(await eventually { openings.isHolding && RawConnection.acceptQueue(port: port) == 1 })
            #expect(await eventually(timeout: .seconds(10)) { waiting.received.hasPrefix("HTTP/1.1 200") })
            #expect(silent.allSatisfy { $0.isOpen })
            #expect(await eventually { openings.opening == 0 })
            for connection in silent + [waiting] { await connection.close() }
        }
    }

    /// A live-socket server with one path, `/ws/test`, that admits every upgrade; `body` gets its
    /// port once the test client's own connection has decided (it counts while it opens, too).
    static func withServer(_ openings: OpeningLimit, _ body: @Sendable (Int) async throws -> Void) async throws {
        let admission = UpgradeAdmission(openings: openings)
        admission.register("/ws/test") { _ in { channel in channel.eventLoop.makeSucceededVoidFuture() } }
        let configuration = HTTPConfiguration(port: 0)
        let app = makeServiceApplication(
            name: "opening-test", configuration: configuration, router: makeServiceRouter(configuration: configuration, readiness: ReadinessChecks()),
            services: [], admission: admission, logger: TestStack.logger)
        try await app.test(.live) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            #expect(await eventually { openings.opening == 0 })
            try await body(try #require(client.port))
        }
    }
}
