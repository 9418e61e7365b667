import EventContracts
import LiveSockets
import Testing

@testable import SocketHandlerService

@Suite("a slow reader is cut off with bounded memory")
struct ChatConnectionTests {
    @Test("frames beyond the outbound buffer mark the connection overflowed and end its queue")
    func boundedOutboundBuffer() async {
        let connection = LiveConnection(userId: "u", sessionId: "s", bufferLimit: 3)
        #expect(connection.send("1") && connection.send("2") && connection.send("3"))
        #expect(!connection.send("4"))
        #expect(connection.isOverflowed)
        var drained: [String] = []
        for await item in connection.outbound {
            if case .text(let text) = item { drained.append(text) }
        }
        // The queue ended (the writer then closes the socket); nothing past the limit was kept.
        #expect(drained == ["1", "2", "3"])
    }

    @Test("an ack goes to the connection that sent, once; other devices get the message")
    func ackRouting() async {
        let registry = ConnectionRegistry()
        let sender = LiveConnection(userId: "alice", sessionId: "s1", bufferLimit: 8)
        let otherDevice = LiveConnection(userId: "alice", sessionId: "s2", bufferLimit: 8)
        #expect(registry.add(sender))
        #expect(!registry.add(otherDevice))
        sender.awaitAck("c-1")
        let delivery = LiveDelivery(recipients: ["alice"], frame: "message", ack: LiveAck(senderId: "alice", clientMsgId: "c-1", frame: "ack"))
        registry.deliver(delivery)
        registry.deliver(delivery)
        sender.finish()
        otherDevice.finish()
        #expect(!registry.remove(sender))
        #expect(registry.remove(otherDevice))
        #expect(await texts(sender) == ["ack", "message"])
        #expect(await texts(otherDevice) == ["message", "message"])
    }

    /// Everything queued on a finished connection.
    private func texts(_ connection: LiveConnection) async -> [String] {
        var result: [String] = []
        for await item in connection.outbound {
            if case .text(let text) = item { result.append(text) }
        }
        return result
    }
}
