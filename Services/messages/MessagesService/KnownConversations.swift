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
/// message. Bounded by the members it holds (a large group counts as many): when full, it starts
/// again empty.
final class KnownConversations: Sendable {
    private struct Entries {
        var conversations: [String: KnownConversation] = [:]
        var members = 0
    }

    private let entries = Mutex(Entries())
    private let capacity: Int
    /// Batches stored from what was known, and batches that found it out of date and were stored
    /// the long way (`/metrics`).
    let storedAsKnown = Counter(label: "swiftchat_messages_stored_as_known_total")
    let foundStale = Counter(label: "swiftchat_messages_known_stale_total")

    /// `capacity`: members over all conversations held (about 100 bytes each).
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
                entries.members -= entries.conversations[id]?.roster.count ?? 0
                if entries.members + conversation.roster.count > capacity { entries = Entries() }
                entries.conversations[id] = conversation
                entries.members += conversation.roster.count
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
            for id in ids { entries.members -= entries.conversations.removeValue(forKey: id)?.roster.count ?? 0 }
        }
    }
}

extension Roster {
    /// Live and deleted members together.
    var count: Int { live.count + deleted.count }
}
