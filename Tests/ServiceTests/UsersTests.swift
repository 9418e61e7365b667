import EventBus
import EventContracts
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import PostgresSupport
import StackTesting
import Testing

@testable import UsersService

@Suite("users: the RabbitMQ path from auth, the query cache, contacts", .serialized)
struct UsersTests {
    func list(
        _ client: any TestClientProtocol, _ session: Session, query: String, extra: String = ""
    ) async throws -> (names: [String], cache: String?, body: [String: Any]) {
        try await client.execute(uri: "/api/users?query=\(query)\(extra)", method: .get, headers: session.bearer) { response in
            #expect(response.status == .ok)
            let body = json(response)
            let names = (body["users"] as? [[String: Any]] ?? []).compactMap { $0["displayName"] as? String }
            return (names, response.headers[.init("X-Cache")!], body)
        }
    }

    @Test("signup → listed by users within a second → the same read again is a cache hit → PATCH /me → the next list shows it")
    func signupToListingWithCache() async throws {
        try await ServiceHarness().run { auth, users in
            let name = TestStack.uniqueName("e2e")
            let signedUpAt = ContinuousClock.now
            let session = try await signUp(auth, username: name)
            #expect(
                await eventually(timeout: .seconds(1), every: .milliseconds(20)) {
                    (try? await list(users, session, query: name).names) == [name]
                })
            #expect(ContinuousClock.now - signedUpAt < .seconds(1))

            let first = try await list(users, session, query: name)
            let second = try await list(users, session, query: name)
            #expect(first.names == [name])
            #expect(second.cache == "hit")
            #expect(second.names == first.names)

            try await users.execute(
                uri: "/api/users/me", method: .patch, headers: session.cookieHeader.merging(jsonHeaders),
                body: ByteBuffer(string: #"{"displayName": "Renamed \#(name)", "about": "hi"}"#)
            ) { response in
                #expect(response.status == .ok)
                #expect((json(response)["user"] as? [String: Any])?["about"] as? String == "hi")
            }
            let after = try await list(users, session, query: name)
            #expect(after.names == ["Renamed \(name)"])
            #expect(after.cache == "miss")

            // auth follows user.updated for the display name it returns.
            #expect(
                await eventually(timeout: .seconds(3)) {
                    (try? await auth.execute(uri: "/api/auth/currentuser", method: .get, headers: session.bearer) { response in
                        (json(response)["user"] as? [String: Any])?["displayName"] as? String
                    }) == "Renamed \(name)"
                })

            try await users.execute(uri: "/api/users/\(session.userId)", method: .get, headers: session.bearer) { response in
                let user = json(response)["user"] as? [String: Any]
                #expect(user?["username"] as? String == name)
                #expect(user?["online"] as? Bool == false)
                #expect(user?.keys.contains("lastSeenAt") == true)
            }
        }
    }

    @Test(
        "presence that arrives before the registration it follows is kept for it (a new account's first connection is announced at once), newest wins whatever the order; what a pod of the release before writes to profiles during a rolling update is carried over"
    )
    func presenceBeforeRegistration() async throws {
        let harness = ServiceHarness()
        try await harness.run { auth, users in
            let viewer = try await signUp(auth, username: TestStack.uniqueName("pv"))
            let at = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            let (fresh, gone) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
            // `fresh` came online before users heard of it; `gone` went offline, and its older
            // "online" came late.
            try await MadeUpEvents.publish([
                try .presence(fresh, online: true, at: at), try .registered(fresh, at: at),
                try .presence(gone, online: false, at: at + 10), try .presence(gone, online: true, at: at), try .registered(gone, at: at),
            ])

            /// users' view of `id`: (online, lastSeenAt in seconds since 1970), once users knows it.
            func status(_ id: String) async -> (online: Bool, lastSeenAt: Double?)? {
                try? await users.execute(uri: "/api/users/\(id)", method: .get, headers: viewer.bearer) { response in
                    guard let user = json(response)["user"] as? [String: Any], let online = user["online"] as? Bool else { return nil }
                    let lastSeenAt = (user["lastSeenAt"] as? String).flatMap { try? Date($0, strategy: .iso8601) }
                    return (online, lastSeenAt?.timeIntervalSince1970)
                }
            }
            #expect(await eventually(timeout: .seconds(10)) { await status(gone) != nil })
            let freshStatus = try #require(await status(fresh))
            #expect(freshStatus.online == true)
            #expect(freshStatus.lastSeenAt == at.timeIntervalSince1970)
            let goneStatus = try #require(await status(gone))
            #expect(goneStatus.online == false)
            #expect(goneStatus.lastSeenAt == at.timeIntervalSince1970 + 10)

            // The release before kept presence in profiles' own columns: its writes reach the
            // presence table, for a user it has no row for yet (the viewer) and, newest winning,
            // for one it has (a newer write, then an older one).
            try await TestStack.withClient(schema: harness.usersSchema) { client in
                for (id, online, time) in [(viewer.userId, true, at + 5), (gone, true, at + 20), (gone, false, at + 15)] {
                    try await client.query("UPDATE profiles SET online = \(online), last_seen_at = \(time) WHERE id = \(id)")
                }
            }
            let viewerStatus = try #require(await status(viewer.userId))
            #expect(viewerStatus.online == true)
            #expect(viewerStatus.lastSeenAt == at.timeIntervalSince1970 + 5)
            let carriedOver = try #require(await status(gone))
            #expect(carriedOver.online == true)
            #expect(carriedOver.lastSeenAt == at.timeIntervalSince1970 + 20)
        }
    }

    @Test(
        "an account's registration that comes after its deletion adds no profile, whether users applied the deletion first or another replica was registering it meanwhile"
    )
    func registrationAfterDeletion() async throws {
        let harness = ServiceHarness()
        try await harness.run { auth, users in
            let viewer = try await signUp(auth, username: TestStack.uniqueName("rv"))
            let (late, raced, marker) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
            func answer(_ id: String) async throws -> HTTPResponse.Status {
                try await users.execute(uri: "/api/users/\(id)", method: .get, headers: viewer.bearer) { $0.status }
            }
            /// How many rows users has for `id` in profiles and in deleted_users.
            @Sendable func rows(_ id: String, _ client: PostgresClient) async throws -> [Int] {
                let found = try await client.query(
                    "SELECT (SELECT count(*) FROM profiles WHERE id = \(id)), (SELECT count(*) FROM deleted_users WHERE id = \(id))")
                var counts: [Int] = []
                for try await (profiles, tombstones) in found.decode((Int, Int).self) { counts = [profiles, tombstones] }
                return counts
            }
            /// Whether one of this users' connections (named after its schema) waits for an account's lock.
            @Sendable func waitingForAnAccount(_ client: PostgresClient) async throws -> Bool {
                let waiting = try await client.query(
                    """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE application_name = current_schema() AND pid <> pg_backend_pid()
                      AND wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock%'
                    """)
                for try await count in waiting.decode(Int.self) { return count > 0 }
                return false
            }

            // A registration retried late: its deletion was applied before it.
            try await MadeUpEvents.publish([try .deleted(late), try .registered(late), try .registered(marker)])
            #expect(await eventually(timeout: .seconds(10)) { (try? await answer(marker)) == .ok })
            #expect(try await answer(late) == .notFound)

            // Another replica registers `raced` and has not committed when users applies its
            // deletion: the deletion waits for the account, then removes what the other wrote.
            try await TestStack.withClient(schema: harness.usersSchema) { client in
                let store = UsersStore(logger: TestStack.logger)
                try await client.transaction(logger: TestStack.logger) { connection in
                    try await store.lockAccounts([raced], on: connection)
                    try await store.insertProfile(id: raced, username: TestStack.uniqueName("rr"), displayName: "raced", createdAt: Date(), on: connection)
                    try await MadeUpEvents.publish([try .deleted(raced)])
                    #expect(await eventually(timeout: .seconds(10)) { (try? await waitingForAnAccount(client)) == true })
                }
                #expect(await eventually(timeout: .seconds(10)) { (try? await rows(raced, client)) == [0, 1] })
            }
            #expect(try await answer(raced) == .notFound)
        }
    }

    @Test("search pages with a stable cursor; prefix wildcards are literal")
    func paging() async throws {
        try await ServiceHarness().run { auth, users in
            let prefix = TestStack.uniqueName("pg")
            var sessions: [Session] = []
            for index in 0..<5 { sessions.append(try await signUp(auth, username: "\(prefix)\(index)")) }
            let session = sessions[0]
            #expect(await eventually(timeout: .seconds(5)) { (try? await list(users, session, query: prefix).names.count) == 5 })
            var seen: [String] = []
            var cursor = ""
            for _ in 0..<3 {
                let page = try await list(users, session, query: prefix, extra: "&limit=2" + (cursor.isEmpty ? "" : "&cursor=\(cursor)"))
                seen += page.names
                guard let next = page.body["nextCursor"] as? String else { break }
                cursor = next
            }
            #expect(seen == (0..<5).map { "\(prefix)\($0)" })
            let last = try await list(users, session, query: prefix)
            #expect(last.body.keys.contains("nextCursor") && last.body["nextCursor"] is NSNull)
            // LIKE's wildcards match themselves: nobody's name starts with "%", or with "<prefix>_".
            #expect(try await list(users, session, query: "%25").names.isEmpty)
            #expect(try await list(users, session, query: "\(prefix)_").names.isEmpty)
            #expect(try await list(users, session, query: "\(prefix)").names.count == 5)
        }
    }

    @Test("contacts: unknown is 404, yourself is 400, a deleted user's contacts disappear")
    func contacts() async throws {
        try await ServiceHarness().run { auth, users in
            let alice = try await signUp(auth, username: TestStack.uniqueName("ca"))
            let bob = try await signUp(auth, username: TestStack.uniqueName("cb"), password: "bob password")
            #expect(
                await eventually(timeout: .seconds(5)) {
                    (try? await users.execute(uri: "/api/users/\(bob.userId)", method: .get, headers: alice.bearer) { $0.status }) == .ok
                })
            try await users.execute(uri: "/api/users/me/contacts/nobody-at-all", method: .put, headers: alice.bearer) { response in
                #expect(response.status == .notFound)
            }
            try await users.execute(uri: "/api/users/me/contacts/\(alice.userId)", method: .put, headers: alice.bearer) { response in
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == "cannot_add_self")
            }
            try await users.execute(uri: "/api/users/me/contacts/\(bob.userId)", method: .put, headers: alice.bearer) { response in
                #expect(response.status == .ok)
                #expect((json(response)["contact"] as? [String: Any])?["id"] as? String == bob.userId)
            }
            let listed = try await users.execute(uri: "/api/users/me/contacts", method: .get, headers: alice.bearer) { response in
                (json(response)["contacts"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            }
            #expect(listed == [bob.userId])

            try await auth.execute(
                uri: "/api/auth/account", method: .delete, headers: bob.bearer.merging(jsonHeaders), body: ByteBuffer(string: #"{"password": "bob password"}"#)
            ) { response in
                #expect(response.status == .noContent)
            }
            #expect(
                await eventually(timeout: .seconds(5)) {
                    (try? await users.execute(uri: "/api/users/me/contacts", method: .get, headers: alice.bearer) { response in
                        (json(response)["contacts"] as? [[String: Any]])?.isEmpty
                    }) == true
                })
            try await users.execute(uri: "/api/users/\(bob.userId)", method: .get, headers: alice.bearer) { response in
                #expect(response.status == .notFound)
            }
            try await users.execute(uri: "/api/users/me/contacts/\(bob.userId)", method: .delete, headers: alice.bearer) { response in
                #expect(response.status == .noContent)
            }
        }
    }

    @Test("RabbitMQ stopped while 100 users sign up, started again: all 100 appear in users, none twice")
    func signupsSurviveBrokerOutage() async throws {
        try await ServiceHarness().run { auth, users in
            let prefix = TestStack.uniqueName("out")
            let observer = try await signUp(auth, username: "\(prefix)_observer")
            #expect(await eventually(timeout: .seconds(5)) { (try? await list(users, observer, query: "\(prefix)_observer").names.count) == 1 })

            try await TestStack.stop(.rabbitmq)
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for batch in 0..<4 {
                        group.addTask {
                            for index in 0..<25 { _ = try await signUp(auth, username: "\(prefix)_\(batch * 25 + index)") }
                        }
                    }
                    try await group.waitForAll()
                }
            } catch {
                try? await TestStack.start(.rabbitmq)
                throw error
            }
            try await TestStack.start(.rabbitmq)

            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
                    (try? await list(users, observer, query: "\(prefix)_", extra: "&limit=100").names.count) == 100
                })
            let listed = try await list(users, observer, query: "\(prefix)_", extra: "&limit=100").names
            #expect(listed.count == 100)
            #expect(Set(listed).count == 100)
            #expect(Set(listed) == Set((0..<100).map { "\(prefix)_\($0)" }))
        }
    }

    @Test("with Redis down, users still answers (from Postgres), and the cache is right when Redis returns")
    func worksWithoutRedis() async throws {
        try await ServiceHarness().run { auth, users in
            let name = TestStack.uniqueName("nr")
            let session = try await signUp(auth, username: name)
            // (A user.registered that beat users' queue declaration is retried by auth's outbox.)
            #expect(await eventually(timeout: .seconds(30)) { (try? await list(users, session, query: name).names) == [name] })
            _ = try await list(users, session, query: name)  // warm
            try await TestStack.kill(.redis)
            do {
                let cold = try await list(users, session, query: name)
                #expect(cold.names == [name])
                #expect(cold.cache == "bypass")
                try await users.execute(
                    uri: "/api/users/me", method: .patch, headers: session.bearer.merging(jsonHeaders),
                    body: ByteBuffer(string: #"{"displayName": "Offline \#(name)"}"#)
                ) { response in
                    #expect(response.status == .ok)
                }
            } catch {
                try? await TestStack.start(.redis)
                throw error
            }
            try await TestStack.start(.redis)
            let back = try await list(users, session, query: name)
            #expect(back.names == ["Offline \(name)"])
        }
    }
}
