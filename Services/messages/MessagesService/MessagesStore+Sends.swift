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
    /// batch order, so each conversation's seqs stay gap-free and in the order sent.
    ///
    /// Without `lookingUpRetries` the first statement is skipped, and the batch throws
    /// `MayHoldRetries` (the transaction is lost; the caller stores it again, looking, see
    /// `MessageSending.store`) when a send fails the insert on the (sender, clientMsgId) key, or
    /// when a send would be refused: a retry of a stored message gets that message, whether or not
    /// its sender may still send there.
    func store(
        _ sends: [MessageSent], at sentAt: Date, lookingUpRetries: Bool, announcing: ([MessageStored]) throws -> [OutgoingMessage],
        on connection: PostgresConnection
    ) async throws -> [SendResult] {
        var results = [SendResult?](repeating: nil, count: sends.count)

        // 1. Retries: a (sender, clientMsgId) stored before, or earlier in this batch.
        var firstIndex: [SendKey: Int] = [:]
        var repeatOf: [Int: Int] = [:]
        for (index, send) in sends.enumerated() {
            let key = SendKey(senderId: send.senderId, clientMsgId: send.clientMsgId)
            if let first = firstIndex[key] { repeatOf[index] = first } else { firstIndex[key] = index }
        }
        let unique = firstIndex.values.sorted()
        let existing = lookingUpRetries ? try await storedMessages(for: unique.map { sends[$0] }, on: connection) : [:]
        var fresh: [Int] = []
        for index in unique {
            let send = sends[index]
            if let message = existing[SendKey(senderId: send.senderId, clientMsgId: send.clientMsgId)] {
                results[index] = .duplicate(message)
            } else {
                fresh.append(index)
            }
        }

        // 2. Lock the conversations, then read their members: a membership change takes the same
        // lock, so the members read here are the members when these messages take their seqs.
        if !fresh.isEmpty {
            let conversationIds = Array(Set(fresh.map { sends[$0].conversationId })).sorted()
            var lastSeq: [String: Int64] = [:]
            var isDirect: Set<String> = []
            var roster: [String: Roster] = [:]
            let locked = try await connection.execute(MessagesStatements.LockWithMembers(ids: conversationIds), logger: logger)
            for try await (id, seq, type, userId, deleted) in locked {
                if lastSeq[id] == nil {
                    lastSeq[id] = seq
                    if type == "direct" { isDirect.insert(id) }
                    roster[id] = Roster()
                }
                if let userId { roster[id]?.add(userId, deleted: deleted == true) }
            }

            // 3. Seqs in batch order; one statement writes the lot.
            var rows = MessageRows()
            var senderMarks: [MemberKey: Int64] = [:]  // each sender's highest new seq per conversation
            var stored: [MessageStored] = []
            for index in fresh {
                let send = sends[index]
                guard let last = lastSeq[send.conversationId], let members = roster[send.conversationId], members.live.contains(send.senderId) else {
                    results[index] = .notMember
                    continue
                }
                if isDirect.contains(send.conversationId), !members.deleted.isEmpty {
                    results[index] = .peerDeleted
                    continue
                }
                let seq = last + 1
                lastSeq[send.conversationId] = seq
                let message = MessageRecord(
                    id: EventID.make(at: sentAt), conversationId: send.conversationId, seq: seq, senderId: send.senderId,
                    clientMsgId: send.clientMsgId, body: send.body, sentAt: sentAt
                )
                rows.append(message)
                senderMarks[MemberKey(conversationId: send.conversationId, userId: send.senderId)] = seq
                results[index] = .stored(message, memberIds: members.live)
                stored.append(MessageStored(message: message, memberIds: members.live, senderInstance: send.instanceId.isEmpty ? nil : send.instanceId))
            }
            if !lookingUpRetries, results.contains(where: { $0 == .notMember || $0 == .peerDeleted }) { throw MayHoldRetries() }
            if !rows.ids.isEmpty {
                do {
                    try await connection.run(
                        MessagesStatements.InsertMessages(
                            rows: rows, sentAt: sentAt, lastSeq: lastSeq, senderMarks: senderMarks, announcements: try announcing(stored)),
                        logger: logger)
                } catch let error as PSQLError
                    where error.serverInfo?[.sqlState] == "23505" && error.serverInfo?[.constraintName] == "messages_sender_id_client_msg_id_key"
                {
                    throw MayHoldRetries()
                }
            }
        }

        // 4. A repeat within the batch gets what its first copy got (as a retry).
        for (index, first) in repeatOf {
            switch results[first] {
            case .stored(let message, _), .duplicate(let message): results[index] = .duplicate(message)
            case .notMember, nil: results[index] = .notMember
            case .peerDeleted: results[index] = .peerDeleted
            }
        }
        return results.map { $0 ?? .notMember }
    }

    /// Messages already stored for these (sender, clientMsgId) pairs, in one statement.
    private func storedMessages(for sends: [MessageSent], on connection: PostgresConnection) async throws -> [SendKey: MessageRecord] {
        guard !sends.isEmpty else { return [:] }
        let rows = try await connection.execute(
            MessagesStatements.StoredSends(senderIds: sends.map(\.senderId), clientMsgIds: sends.map(\.clientMsgId)), logger: logger
        )
        var found: [SendKey: MessageRecord] = [:]
        for try await (id, conversation, seq, sender, clientId, body, sentAt) in rows {
            found[SendKey(senderId: sender, clientMsgId: clientId)] = MessageRecord(
                id: id, conversationId: conversation, seq: seq, senderId: sender, clientMsgId: clientId, body: body, sentAt: sentAt
            )
        }
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
        var changes: [MarkerChange] = []
        for try await (conversationId, userId, delivered, read) in rows.decode((String, String, Int64, Int64).self) {
            changes.append(MarkerChange(conversationId: conversationId, userId: userId, deliveredSeq: delivered, readSeq: read))
        }
        return changes
    }
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
