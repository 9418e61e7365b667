import EventBus
import EventContracts
import Foundation
import PostgresNIO
import PostgresSupport

/// What became of one send.
enum SendResult: Sendable, Equatable {
    /// Stored now, with the members it goes to.
    case stored(MessageRecord, memberIds: [String])
    /// The same (sender, clientMsgId) was stored before: the original message.
    case duplicate(MessageRecord)
    /// Not a member (or no such conversation): the send is refused.
    case notMember
    /// A direct conversation whose other member deleted their account: it is read-only.
    case peerDeleted
}

/// The members of one conversation: the live ones (who get its messages) and the deleted accounts.
struct Roster: Sendable {
    var live: [String] = []
    var deleted: [String] = []

    mutating func add(_ userId: String, deleted isDeleted: Bool) {
        if isDeleted { deleted.append(userId) } else { live.append(userId) }
    }
}

/// A batch of sends, stored: what became of each send, and the events announcing the new messages,
/// whose outbox rows were written handed off (for `OutboxRelay.handOff`, once committed).
struct StoredSends: Sendable, Equatable {
    var results: [SendResult]
    var announcements: [OutgoingMessage]
}

/// A receipt marker after a batch moved it.
struct MarkerChange: Sendable, Equatable {
    let conversationId: String
    let userId: String
    let deliveredSeq: Int64
    let readSeq: Int64
}

extension MessagesStore {
    /// Stores a batch of sends in order, inside the caller's transaction, with a fixed number of
    /// statements whatever the batch's size: look up retries; lock the conversations (in id order,
    /// as every writer of a conversation does) and read their members after the lock, in one round
    /// trip; then insert the messages, advance `last_seq` and the senders' markers, and write
    /// `announcing`'s outbox rows for the new messages, in one statement. Seqs are assigned here in
    /// batch order, so each conversation's seqs stay gap-free and in the order sent. What the lock
    /// found is remembered in `known`, for `storeAsKnown`.
    ///
    /// Without `lookingUpRetries` the first statement is skipped, and the batch throws
    /// `MayHoldRetries` (the transaction is lost; the caller stores it again, looking, see
    /// `MessageSending.store`) when a send fails the insert on the (sender, clientMsgId) key, or
    /// when a send would be refused: a retry of a stored message gets that message, whether or not
    /// its sender may still send there.
    func store(
        _ sends: [MessageSent], at sentAt: Date, lookingUpRetries: Bool, announcing: ([MessageStored]) throws -> [OutgoingMessage],
        on connection: PostgresConnection
    ) async throws -> StoredSends {
        var batch = SendBatch(sends)
        var announcements: [OutgoingMessage] = []
        if lookingUpRetries { batch.answerRetries(with: try await storedMessages(for: batch.unique.map { sends[$0] }, on: connection)) }
        if !batch.fresh.isEmpty {
            let conversations = try await lockWithMembers(batch.conversationIds, on: connection)
            known.remember(conversations)
            let plan = batch.plan(conversations: conversations, at: sentAt)
            if !lookingUpRetries, plan.refusesAny { throw MayHoldRetries() }
            if !plan.rows.ids.isEmpty {
                announcements = try announcing(plan.stored)
                do {
                    try await connection.run(
                        MessagesStatements.InsertMessages(
                            rows: plan.rows, sentAt: sentAt, lastSeq: plan.lastSeq, senderMarks: plan.senderMarks, announcements: announcements),
                        logger: logger)
                } catch let error as PSQLError where error.isRepeatedSend {
                    throw MayHoldRetries()
                }
                // Before the commit: should it fail, the next batch built from this finds the
                // conversation's last seq changed, and is stored this way again.
                known.advance(plan.lastSeq)
            }
        }
        return StoredSends(results: batch.results, announcements: announcements)
    }

    /// What became of a batch offered to `storeAsKnown`.
    enum AsKnown: Equatable {
        /// Stored, in one statement.
        case stored(StoredSends)
        /// A conversation was not known, or a send would be refused: nothing written.
        case unknown
        /// A conversation changed since it was known, now forgotten: nothing written.
        case stale
        /// A send is stored already (it failed the insert on its key), or may be: nothing written;
        /// store the batch looking its sends up.
        case mayHoldRetries
    }

    /// The same batch in one statement and no transaction (no `BEGIN`, no lock round trip, no
    /// `COMMIT`), built from what `known` says of its conversations, and written only if Postgres
    /// finds every one of them so under its lock (`store_messages_as_known`, migration 0007).
    /// Anything else, and `store` must do it. Run on its own connection.
    func storeAsKnown(
        _ sends: [MessageSent], at sentAt: Date, announcing: ([MessageStored]) throws -> [OutgoingMessage], client: PostgresClient
    ) async throws -> AsKnown {
        let outcome = try await attemptAsKnown(sends, at: sentAt, announcing: announcing, client: client)
        known.count(outcome)
        return outcome
    }

    private func attemptAsKnown(
        _ sends: [MessageSent], at sentAt: Date, announcing: ([MessageStored]) throws -> [OutgoingMessage], client: PostgresClient
    ) async throws -> AsKnown {
        var batch = SendBatch(sends)
        let conversationIds = batch.conversationIds
        guard !batch.fresh.isEmpty, let conversations = known.lookup(conversationIds) else { return .unknown }
        let plan = batch.plan(conversations: conversations, at: sentAt)
        // A refusal may be a retry's (see `store`); the long way settles which.
        guard !plan.refusesAny else { return .mayHoldRetries }
        let expected = conversationIds.compactMap { conversations[$0] }
        let announcements = try announcing(plan.stored)
        let statement = MessagesStatements.InsertMessagesAsKnown(
            knownIds: conversationIds, knownLastSeqs: expected.map(\.lastSeq), knownVersions: expected.map(\.membersVersion),
            insert: MessagesStatements.InsertMessages(
                rows: plan.rows, sentAt: sentAt, lastSeq: plan.lastSeq, senderMarks: plan.senderMarks, announcements: announcements))
        do {
            try await client.withConnection { try await $0.run(statement, logger: logger) }
        } catch let error as PSQLError where error.isStaleKnowledge {
            known.forget(conversationIds)
            return .stale
        } catch let error as PSQLError where error.isRepeatedSend {
            return .mayHoldRetries
        }
        known.advance(plan.lastSeq)
        return .stored(StoredSends(results: batch.results, announcements: announcements))
    }

    /// Locks the conversations and reads their members (`lock_with_members`): those that exist.
    private func lockWithMembers(_ ids: [String], on connection: PostgresConnection) async throws -> [String: KnownConversation] {
        var conversations: [String: KnownConversation] = [:]
        let locked = try await connection.execute(MessagesStatements.LockWithMembers(ids: ids), logger: logger)
        for try await (id, lastSeq, membersVersion, type, userId, deleted) in locked {
            if conversations[id] == nil {
                conversations[id] = KnownConversation(lastSeq: lastSeq, membersVersion: membersVersion, isDirect: type == "direct", roster: Roster())
            }
            if let userId { conversations[id]?.roster.add(userId, deleted: deleted == true) }
        }
        return conversations
    }

    /// Messages already stored for these (sender, clientMsgId) pairs, in one statement.
    private func storedMessages(for sends: [MessageSent], on connection: PostgresConnection) async throws -> [SendKey: MessageRecord] {
        guard !sends.isEmpty else { return [:] }
        let rows = try await connection.execute(
            MessagesStatements.StoredSends(senderIds: sends.map(\.senderId), clientMsgIds: sends.map(\.clientMsgId)), logger: logger
        )
        var found: [SendKey: MessageRecord] = [:]
        for try await message in rows { found[SendKey(senderId: message.senderId, clientMsgId: message.clientMsgId)] = message }
        return found
    }

    /// The members of each conversation, in one statement: the live ones (who get its messages)
    /// and the deleted accounts.
    func members(of conversationIds: [String], on connection: PostgresConnection) async throws -> [String: Roster] {
        guard !conversationIds.isEmpty else { return [:] }
        var members: [String: Roster] = [:]
        for id in conversationIds { members[id] = Roster() }
        let rows = try await connection.execute(MessagesStatements.Members(conversationIds: conversationIds), logger: logger)
        for try await (conversationId, userId, deleted) in rows {
            members[conversationId]?.add(userId, deleted: deleted)
        }
        return members
    }

    /// Moves members' markers forward only, never past the conversation's last seq (read implies
    /// delivered), for a whole batch of markers in one statement; returns the markers that moved.
    /// A marker of someone who is not a member changes nothing.
    func advanceMarkers(_ marks: [ReceiptMarked], on connection: PostgresConnection) async throws -> [MarkerChange] {
        // Several marks of one member in one batch: the furthest of each kind wins.
        var furthest: [MemberKey: (delivered: Int64, read: Int64)] = [:]
        for mark in marks {
            let key = MemberKey(conversationId: mark.conversationId, userId: mark.userId)
            let current = furthest[key] ?? (0, 0)
            furthest[key] = (max(current.delivered, mark.deliveredSeq ?? 0), max(current.read, mark.readSeq ?? 0))
        }
        guard !furthest.isEmpty else { return [] }
        let keys = furthest.keys.sorted { ($0.conversationId, $0.userId) < ($1.conversationId, $1.userId) }
        let rows = try await connection.query(
            """
            WITH wanted AS (
                SELECT v.conversation_id, v.user_id,
                       LEAST(GREATEST(v.delivered, v.read), c.last_seq) AS delivered, LEAST(v.read, c.last_seq) AS read
                FROM unnest(\(keys.map(\.conversationId)), \(keys.map(\.userId)), \(keys.map { furthest[$0]!.delivered }), \(keys.map { furthest[$0]!.read }))
                     AS v(conversation_id, user_id, delivered, read)
                JOIN conversations c ON c.id = v.conversation_id
            )
            UPDATE members m
            SET delivered_seq = GREATEST(m.delivered_seq, w.delivered), read_seq = GREATEST(m.read_seq, w.read)
            FROM wanted w
            WHERE m.conversation_id = w.conversation_id AND m.user_id = w.user_id
              AND (w.delivered > m.delivered_seq OR w.read > m.read_seq)
            RETURNING m.conversation_id, m.user_id, m.delivered_seq, m.read_seq
            """,
            logger: logger
        )
        return try await rows.readAll { reader in
            try MarkerChange(conversationId: reader.next(), userId: reader.next(), deliveredSeq: reader.next(), readSeq: reader.next())
        }
    }
}

/// A batch of sends on its way to being stored: which are repeats of an earlier one in the batch,
/// which were stored before (when looked up), and what became of each.
private struct SendBatch {
    let sends: [MessageSent]
    /// The first of each (sender, clientMsgId), in batch order.
    let unique: [Int]
    /// Of `unique`, those not stored before.
    private(set) var fresh: [Int]
    private var repeatOf: [Int: Int] = [:]
    private var answers: [SendResult?]

    init(_ sends: [MessageSent]) {
        self.sends = sends
        var firstIndex: [SendKey: Int] = [:]
        for (index, send) in sends.enumerated() {
            let key = SendKey(senderId: send.senderId, clientMsgId: send.clientMsgId)
            if let first = firstIndex[key] { repeatOf[index] = first } else { firstIndex[key] = index }
        }
        unique = firstIndex.values.sorted()
        fresh = unique
        answers = Array(repeating: nil, count: sends.count)
    }

    /// The sends' conversations, in id order.
    var conversationIds: [String] { Array(Set(fresh.map { sends[$0].conversationId })).sorted() }

    /// Sends stored before get their message, as retries, and are not stored again.
    mutating func answerRetries(with existing: [SendKey: MessageRecord]) {
        fresh = unique.filter { index in
            let send = sends[index]
            guard let message = existing[SendKey(senderId: send.senderId, clientMsgId: send.clientMsgId)] else { return true }
            answers[index] = .duplicate(message)
            return false
        }
    }

    /// Seqs in batch order, and the rows one statement writes, for the fresh sends; each send's
    /// result is kept.
    mutating func plan(conversations: [String: KnownConversation], at sentAt: Date) -> StorePlan {
        var plan = StorePlan(lastSeq: conversations.mapValues(\.lastSeq))
        for index in fresh {
            let send = sends[index]
            guard let conversation = conversations[send.conversationId], conversation.roster.live.contains(send.senderId) else {
                answers[index] = .notMember
                plan.refusesAny = true
                continue
            }
            if conversation.isDirect, !conversation.roster.deleted.isEmpty {
                answers[index] = .peerDeleted
                plan.refusesAny = true
                continue
            }
            let seq = plan.lastSeq[send.conversationId, default: 0] + 1
            plan.lastSeq[send.conversationId] = seq
            let message = MessageRecord(
                id: EventID.make(at: sentAt), conversationId: send.conversationId, seq: seq, senderId: send.senderId,
                clientMsgId: send.clientMsgId, body: send.body, sentAt: sentAt
            )
            plan.rows.append(message)
            plan.senderMarks[MemberKey(conversationId: send.conversationId, userId: send.senderId)] = seq
            answers[index] = .stored(message, memberIds: conversation.roster.live)
            plan.stored.append(
                MessageStored(message: message, memberIds: conversation.roster.live, senderInstance: send.instanceId.isEmpty ? nil : send.instanceId))
        }
        return plan
    }

    /// Each send's result; a repeat within the batch gets what its first copy got (as a retry).
    var results: [SendResult] {
        answers.indices.map { index in
            guard let first = repeatOf[index] else { return answers[index] ?? .notMember }
            switch answers[first] {
            case .stored(let message, _), .duplicate(let message): return .duplicate(message)
            case let result?: return result
            case nil: return .notMember
            }
        }
    }
}

/// What one statement writes for a batch of sends.
private struct StorePlan {
    var rows = MessageRows()
    /// Every conversation's last seq after the batch.
    var lastSeq: [String: Int64]
    /// Each sender's highest new seq per conversation.
    var senderMarks: [MemberKey: Int64] = [:]
    var stored: [MessageStored] = []
    /// Some send is refused (not a member, or a direct conversation whose peer is gone).
    var refusesAny = false
}

extension PSQLError {
    /// A send's (sender, clientMsgId) is stored already.
    fileprivate var isRepeatedSend: Bool {
        serverInfo?[.sqlState] == "23505" && serverInfo?[.constraintName] == "messages_sender_id_client_msg_id_key"
    }

    /// `store_messages_as_known` found a conversation changed since the batch was built.
    fileprivate var isStaleKnowledge: Bool { serverInfo?[.sqlState] == "SC001" }
}

/// A batch stored without looking its retries up held one (or a send it would refuse, which may
/// be one): the transaction is lost; store the batch again, looking.
struct MayHoldRetries: Error {}

/// A send's idempotency key.
private struct SendKey: Hashable {
    let senderId: String
    let clientMsgId: String
}

/// One member of one conversation.
struct MemberKey: Hashable {
    let conversationId: String
    let userId: String
}
