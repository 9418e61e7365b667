import Foundation

/// The catch-up phase's reader: fetches a conversation's stored messages in pages of 1,000 and
/// decodes each page into typed values as a typed client would (a browser's `JSON.parse` is
/// quicker still), timing the whole and the decoding apart.
struct CatchUpReader: Sendable {
    /// How the pages are fetched.
    enum Way: String, CaseIterable {
        /// One page after another, each `after` the last seq of the one before, until a page
        /// comes back short: all a client that knows only what it holds can do.
        case sequential = "one after another"
        /// The conversation's `lastSeq` first, then every page at once, each a seq range
        /// (`after`, `before`), decoded as it arrives.
        case concurrent = "all at once by seq range"
    }

    struct Round {
        var total: Double
        /// The decoding's time, added up over the pages (which may overlap).
        var decoding: Double
        /// The seqs that came back, page after page.
        var seqs: [Int]
    }

    private struct Page: Decodable {
        struct Message: Decodable {
            let id, conversationId, senderId, clientMsgId, body, sentAt: String
            let seq: Int
        }
        let messages: [Message]
    }

    private struct Envelope: Decodable {
        struct Conversation: Decodable { let lastSeq: Int }
        let conversation: Conversation
    }

    static let pageSize = 1000

    /// The conversation's URL (`…/api/conversations/ID`).
    let url: String
    let token: String

    func fetchAll(_ way: Way) async throws -> Round {
        let start = ContinuousClock.now
        let pages: [(seqs: [Int], decoding: Duration)]
        switch way {
        case .sequential:
            var fetched: [(seqs: [Int], decoding: Duration)] = []
            var after = 0
            while true {
                let (messages, decoding) = try await page(after: after, before: nil)
                fetched.append((messages.map(\.seq), decoding))
                guard let last = messages.last?.seq, messages.count == Self.pageSize else { break }
                after = last
            }
            pages = fetched
        case .concurrent:
            let (status, data) = await httpData("GET", url, token: token)
            guard status == 200, let envelope = try? JSONDecoder().decode(Envelope.self, from: data) else {
                throw BenchError("catch-up conversation failed: \(status)")
            }
            let count = (envelope.conversation.lastSeq + Self.pageSize - 1) / Self.pageSize
            pages = try await concurrentMap(0..<count, width: count) { index in
                let after = index * Self.pageSize
                let (messages, decoding) = try await page(after: after, before: after + Self.pageSize + 1)
                return (messages.map(\.seq), decoding)
            }
        }
        return Round(
            total: (ContinuousClock.now - start).inMilliseconds,
            decoding: pages.reduce(Duration.zero) { $0 + $1.decoding }.inMilliseconds,
            seqs: pages.flatMap(\.seqs))
    }

    /// One page: the messages after `after` (and before `before`), and how long decoding took.
    private func page(after: Int, before: Int?) async throws -> ([Page.Message], Duration) {
        let range = before.map { "&before=\($0)" } ?? ""
        let (status, data) = await httpData("GET", "\(url)/messages?after=\(after)\(range)&limit=\(Self.pageSize)", token: token)
        let decodeStart = ContinuousClock.now
        guard status == 200, let page = try? JSONDecoder().decode(Page.self, from: data) else {
            throw BenchError("catch-up page failed: \(status)")
        }
        return (page.messages, ContinuousClock.now - decodeStart)
    }
}
