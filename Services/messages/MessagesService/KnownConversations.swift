import Metrics
import Synchronization

/// What a conversation was when messages last locked it: enough to build a batch of sends to it
/// without locking it first (`MessagesStore.storeAsKnown`).
struct KnownConversation: Sendable {
    var lastSeq: Int64
    /// Moved on by every change to the members (migration 0007), in the change's transaction.
    var membersVersion: Int64
    var isDirect: Bool
    var roster: Roster
}

/// The conversations messages stored to lately, as it last saw them. Never trusted: a batch built
/// from them is stored only if Postgres finds each conversation's last seq and members' version
/// unchanged, under its lock; so an entry that is out of date costs a round trip, never a wrong
/// message. Bounded by the conversations and members it holds (a large group counts as many):
/// when full, it starts again empty.
final class KnownConversations: Sendable {
    private struct Entries {
        var conversations: [String: KnownConversation] = [:]
        /// Conversations and members held.
        var size = 0
    }

    private let entries = Mutex(Entries())
    private let capacity: Int
    private let stored = Counter(label: "swiftchat_messages_known_batches_total", dimensions: [("result", "stored")])
    private let stale = Counter(label: "swiftchat_messages_known_batches_total", dimensions: [("result", "stale")])
    private let unknown = Counter(label: "swiftchat_messages_known_batches_total", dimensions: [("result", "unknown")])
    private let retries = Counter(label: "swiftchat_messages_known_batches_total", dimensions: [("result", "may_hold_retries")])

    /// `capacity`: conversations and their members over all conversations held (about 100 bytes
    /// each).
    init(capacity: Int = 200_000) {
        self.capacity = capacity
    }

    /// Every one of `ids`, or nil if one is not known.
    func lookup(_ ids: [String]) -> [String: KnownConversation]? {
        entries.withLock { entries in
            var found: [String: KnownConversation] = [:]
            for id in ids {
                guard let conversation = entries.conversations[id] else { return nil }
                found[id] = conversation
            }
            return found
        }
    }

    /// Conversations just read under their lock.
    func remember(_ locked: [String: KnownConversation]) {
        entries.withLock { entries in
            for (id, conversation) in locked {
                entries.size -= entries.conversations[id]?.size ?? 0
                if entries.size + conversation.size > capacity { entries = Entries() }
                entries.conversations[id] = conversation
                entries.size += conversation.size
            }
        }
    }

    /// The last seqs a stored batch left its conversations with.
    func advance(_ lastSeqs: [String: Int64]) {
        entries.withLock { entries in
            for (id, lastSeq) in lastSeqs { entries.conversations[id]?.lastSeq = lastSeq }
        }
    }

    func forget(_ ids: [String]) {
        entries.withLock { entries in
            for id in ids { entries.size -= entries.conversations.removeValue(forKey: id)?.size ?? 0 }
        }
    }
}

extension KnownConversations {
    /// What became of a batch offered to be stored as known (`/metrics`).
    func count(_ outcome: MessagesStore.AsKnown) {
        switch outcome {
        case .stored: stored.increment()
        case .stale: stale.increment()
        case .unknown: unknown.increment()
        case .mayHoldRetries: retries.increment()
        }
    }
}

extension KnownConversation {
    /// The conversation and its members, live and deleted: what it costs to hold.
    fileprivate var size: Int { 1 + roster.live.count + roster.deleted.count }
}
