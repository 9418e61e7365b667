import EventBus
import EventContracts
import Foundation
import StackTesting
import Testing

/// Events as the services publish them, made up by tests that need them in an order or a shape
/// those services do not produce (late, early, duplicated), and published in that order on one
/// channel, so they reach every queue in that order.
enum MadeUpEvents {
    /// Publishes `messages` in order, each confirmed by the broker.
    static func publish(_ messages: [OutgoingMessage]) async throws {
        let publisher = EventPublisher(configuration: TestStack.amqp(), logger: TestStack.logger)
        let outcomes: [PublishOutcome]
        do { outcomes = try await publisher.publish(messages) } catch {
            await publisher.shutdown()
            throw error
        }
        await publisher.shutdown()
        #expect(outcomes.allSatisfy { $0 == .confirmed })
    }
}

extension OutgoingMessage {
    static func registered(_ id: String, at time: Date = Date()) throws -> OutgoingMessage {
        let name = TestStack.uniqueName("mu")
        let event = UserRegistered(userId: id, username: name, email: "\(name)@example.com", displayName: name, createdAt: time)
        return try OutgoingMessage(EventEnvelope(producer: "test", payload: event))
    }

    static func deleted(_ id: String) throws -> OutgoingMessage {
        try OutgoingMessage(EventEnvelope(producer: "test", payload: UserDeleted(userId: id)))
    }

    static func presence(_ id: String, online: Bool, at time: Date) throws -> OutgoingMessage {
        try OutgoingMessage(EventEnvelope(producer: "test", payload: PresenceChanged(userId: id, online: online, lastSeenAt: time)))
    }
}
