import EventBus
import EventContracts
import LiveSockets
import Logging

/// What messages announces, routed live: shared by every instance (competing consumers on one
/// durable quorum queue, so a stored message is routed once, even if an instance dies), a batch of
/// events at a time with one registry lookup and one publish per other destination instance.
struct LiveRouteHandler: EventHandler {
    enum Event: EventSet {
        case stored(MessageStored)
        case receipt(ReceiptUpdated)
        case created(ConversationCreated)
        case memberAdded(ConversationMemberAdded)
        case memberRemoved(ConversationMemberRemoved)
        case renamed(ConversationRenamed)
        case roleChanged(ConversationRoleChanged)

        static let cases = [
            EventCase(MessageStored.self, Event.stored), EventCase(ReceiptUpdated.self, Event.receipt),
            EventCase(ConversationCreated.self, Event.created), EventCase(ConversationMemberAdded.self, Event.memberAdded),
            EventCase(ConversationMemberRemoved.self, Event.memberRemoved), EventCase(ConversationRenamed.self, Event.renamed),
            EventCase(ConversationRoleChanged.self, Event.roleChanged),
        ]
    }

    let namespace: String
    let router: LiveRouter
    let membership: MembershipCache
    let logger: Logger

    var subscription: Subscription { Subscription(queue: "\(namespace).message-events", kind: .shared(), prefetch: 512, batchSize: 256) }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        var routes: [LiveRoute] = []
        var changed: [String: [String]] = [:]  // conversation events: the member list, replaced
        var seen: [String: [String]] = [:]  // stored messages: the member list, if the cache lost it
        for item in batch {
            switch item.event {
            case .stored(let stored):
                let message = stored.message
                let ack = stored.senderInstance.map { instance in
                    let frame = LiveFrame.encode(OutboundFrame.Ack(clientMsgId: message.clientMsgId, message: message))
                    return (instance: instance, ack: LiveAck(senderId: message.senderId, clientMsgId: message.clientMsgId, frame: frame))
                }
                routes.append(LiveRoute(frame: LiveFrame.encode(OutboundFrame.Message(message: message)), recipients: stored.memberIds, ack: ack))
                seen[message.conversationId] = stored.memberIds
            case .receipt(let receipt):
                // The reader's own other devices hear of it too, so their unread counts follow.
                let frame = OutboundFrame.Receipt(
                    conversationId: receipt.conversationId, userId: receipt.userId, deliveredSeq: receipt.deliveredSeq, readSeq: receipt.readSeq
                )
                routes.append(LiveRoute(frame: LiveFrame.encode(frame), recipients: receipt.memberIds))
            case .created(let created):
                routes.append(conversationRoute(.created, created.conversation, changed: &changed))
            case .memberAdded(let added):
                routes.append(conversationRoute(.memberAdded, added.conversation, changed: &changed))
            case .memberRemoved(let removed):
                // The removed member hears of the removal, and of nothing after it.
                routes.append(conversationRoute(.memberRemoved, removed.conversation, alsoTo: removed.userId, changed: &changed))
            case .renamed(let renamed):
                routes.append(conversationRoute(.renamed, renamed.conversation, changed: &changed))
            case .roleChanged(let changedRole):
                routes.append(conversationRoute(.roleChanged, changedRole.conversation, changed: &changed))
            }
        }
        // The typing cache is a convenience: live delivery goes on without it.
        async let cached: Void = updateMembership(changed: changed, seen: seen.filter { changed[$0.key] == nil })
        try await router.route(routes)
        await cached
        return EventOutcome.done(batch.count)
    }

    private func conversationRoute(
        _ event: OutboundFrame.ConversationEvent, _ conversation: ConversationSnapshot, alsoTo extra: String? = nil,
        changed: inout [String: [String]]
    ) -> LiveRoute {
        // A deleted account has no sockets and may not type.
        let members = conversation.members.filter { $0.deleted != true }.map(\.userId)
        changed[conversation.id] = members
        let frame = LiveFrame.encode(OutboundFrame.Conversation(event: event, conversation: conversation))
        return LiveRoute(frame: frame, recipients: extra.map { members.contains($0) ? members : members + [$0] } ?? members)
    }

    private func updateMembership(changed: [String: [String]], seen: [String: [String]]) async {
        do {
            if !changed.isEmpty { try await membership.replace(changed) }
            if !seen.isEmpty { try await membership.fillMissing(seen) }
        } catch {
            logger.debug("membership cache unavailable", metadata: ["error": "\(error)"])
        }
    }
}

/// This instance's own queue: the live frames other instances route to its connections, the
/// answers to their sends, and ended sessions (every instance closes the sockets it holds of a
/// signed-out session or a deleted account).
struct InstanceHandler: EventHandler {
    enum Event: EventSet {
        case live(LiveDelivery)
        case answered(SendAnswered)
        case signedOut(UserSignedOut)
        case deleted(UserDeleted)

        static let cases = [
            EventCase(LiveDelivery.self, Event.live), EventCase(SendAnswered.self, Event.answered), EventCase(UserSignedOut.self, Event.signedOut),
            EventCase(UserDeleted.self, Event.deleted),
        ]
    }

    let namespace: String
    let instanceId: String
    let connections: ConnectionRegistry

    var subscription: Subscription {
        Subscription(queue: "\(namespace).instance.\(instanceId)", kind: .instance(id: instanceId), prefetch: 1024, batchSize: 256)
    }

    func handle(_ batch: [IncomingEvent<Event>]) async throws -> [EventOutcome] {
        // The batch's frames are queued first and their sockets woken together, once per event
        // loop; a close queued meanwhile goes out after the frames queued before it.
        var wakes = SocketWakes()
        defer { wakes.fire() }
        for item in batch {
            switch item.event {
            case .live(let delivery):
                connections.deliver(delivery, waking: &wakes)
            case .answered(let answer):
                let frame =
                    answer.message.map { LiveFrame.encode(OutboundFrame.Ack(clientMsgId: answer.clientMsgId, message: $0)) }
                    ?? LiveFrame.error(answer.error ?? "send_failed", Self.explanation(of: answer.error), clientMsgId: answer.clientMsgId)
                connections.answer(answer.senderId, clientMsgId: answer.clientMsgId, with: frame, orEveryConnection: answer.error != nil)
            case .signedOut(let signedOut):
                connections.close(sessionId: signedOut.sessionId, of: signedOut.userId, reason: "signed out")
            case .deleted(let deleted):
                connections.closeAll(of: deleted.userId, reason: "account deleted")
            }
        }
        return EventOutcome.done(batch.count)
    }

    static func explanation(of code: String?) -> String {
        switch code {
        case "not_found": "No such conversation, or you are not a member."
        case "peer_deleted": "The other person deleted their account; this conversation is read-only."
        case "invalid_message": "The message breaks the message rules."
        case "client_msg_id_reused": "This clientMsgId was already used for another conversation."
        default: "The message was not stored; send it again."
        }
    }
}
