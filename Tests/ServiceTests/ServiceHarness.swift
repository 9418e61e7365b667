import AuthService
import EventBus
import Foundation
import Hummingbird
import HummingbirdTesting
import HummingbirdWebSocket
import JWTKit
import LiveSockets
import Logging
import MessagesService
import NotificationsService
import PostgresNIO
import PostgresSupport
import ServiceHTTP
import ServiceLifecycle
import ServiceRuntime
import SocketHandlerService
import StackTesting
import UsersService

/// auth and users wired exactly as their `main` does, against the real stack, on fresh schemas,
/// with their own queues and Redis keys (a unique namespace) and a key pair made for the test.
struct ServiceHarness: Sendable {
    let namespace = TestStack.uniqueName("svc")
    let authSchema = TestStack.uniqueSchema("auth")
    let usersSchema = TestStack.uniqueSchema("users")
    let messagesSchema = TestStack.uniqueSchema("messages")
    let notificationsSchema = TestStack.uniqueSchema("notifications")
    let privateKey = ES256PrivateKey()
    let logger = TestStack.logger
    var authConfiguration: AuthConfiguration

    init(configure: (inout AuthConfiguration) -> Void = { _ in }) {
        var configuration = AuthConfiguration(privateKeyPEM: privateKey.pemRepresentation, secureCookies: false)
        configure(&configuration)
        self.authConfiguration = configuration
    }

    func verifier() async throws -> AccessTokenVerifier {
        try await AccessTokenVerifier(publicKeyPEM: privateKey.publicKey.pemRepresentation)
    }

    /// Any free port. `allowTestClientOrigin`: Hummingbird's websocket test client always sends
    /// `Origin: ws://<host>`, and a present Origin must be on the list.
    func http(allowTestClientOrigin: Bool) -> HTTPConfiguration {
        HTTPConfiguration(port: 0, allowedOrigins: HTTPConfiguration.localOrigins + (allowTestClientOrigin ? ["ws://127.0.0.1"] : []))
    }

    func dependencies(name: String, schema: SchemaName, allowTestClientOrigin: Bool = false) async throws -> ServiceDependencies {
        ServiceDependencies(
            name: name,
            database: TestStack.database(schema: schema),
            redis: TestStack.redis(),
            amqp: TestStack.amqp(publishTimeout: .seconds(3)),
            http: http(allowTestClientOrigin: allowTestClientOrigin),
            tokenVerifier: try await verifier(),
            namespace: "\(namespace)_\(name)",
            logger: logger
        )
    }

    /// A service wired as its `main` wires it, on this harness's fresh schema (migrated first)
    /// and namespace. `build` adds its routes and returns its work (the definition's by default).
    private func application(
        _ definition: ServiceDefinition, schema: SchemaName, liveSockets: Bool = false,
        build: ((ServiceDependencies, Router<ServiceRequestContext>) async throws -> [any Service])? = nil
    ) async throws -> some ApplicationProtocol {
        try await definition.migrate(TestStack.database(schema: schema), logger: logger)
        let dependencies = try await dependencies(name: definition.name, schema: schema, allowTestClientOrigin: liveSockets)
        let router = makeServiceRouter(configuration: dependencies.http, readiness: dependencies.readiness, liveness: dependencies.livenessChecks)
        let work = try await (build ?? definition.build)(dependencies, router)
        return makeServiceApplication(
            name: definition.name, configuration: dependencies.http, router: router, services: dependencies.coreServices + work,
            admission: dependencies.socketAdmission, logger: logger
        )
    }

    func authApplication() async throws -> some ApplicationProtocol {
        try await application(AuthService.definition, schema: authSchema) { dependencies, router in
            try await AuthService.build(dependencies: dependencies, configuration: authConfiguration, router: router)
        }
    }

    func usersApplication() async throws -> some ApplicationProtocol {
        try await application(UsersService.definition, schema: usersSchema)
    }

    func messagesApplication() async throws -> some ApplicationProtocol {
        try await application(MessagesService.definition, schema: messagesSchema)
    }

    /// Its instance id is fixed, so `cleanUp` can name its queue. Open sockets are checked against
    /// ended sessions every second (every ten by default).
    func notificationsApplication() async throws -> some ApplicationProtocol {
        var configuration = NotificationsService.Configuration(instanceId: "\(namespace)-n1")
        configuration.revocationSweep = .seconds(1)
        return try await application(NotificationsService.definition, schema: notificationsSchema, liveSockets: true) { dependencies, router in
            NotificationsService.build(dependencies: dependencies, configuration: configuration, router: router)
        }
    }

    /// Runs auth and messages while `body` runs, then removes the harness's schemas and queues
    /// (or leaves that to an enclosing `cleaningUp`).
    func runChat(_ body: @Sendable (_ auth: any TestClientProtocol, _ messages: any TestClientProtocol) async throws -> Void) async throws {
        let auth = try await authApplication()
        let messages = try await messagesApplication()
        try await cleaningUp {
            try await auth.test(.router) { authClient in
                try await messages.test(.router) { messagesClient in
                    try await awaitConsumers(of: authQueues + messagesQueues)
                    try await body(authClient, messagesClient)
                }
            }
        }
    }

    /// Runs `body`, then removes the harness's schemas and queues, whether or not it threw. Nested
    /// in another `cleaningUp` of the same harness it only runs `body`: the outermost one cleans
    /// up, once whatever a test runs around the inner one has stopped too (nothing still running
    /// polls a dropped table or loses its queue).
    func cleaningUp(_ body: () async throws -> Void) async throws {
        if Self.cleaningUpNamespace == namespace { return try await body() }
        try await Self.$cleaningUpNamespace.withValue(namespace) {
            do {
                try await body()
            } catch {
                await cleanUp()
                throw error
            }
        }
        await cleanUp()
    }

    /// The namespace of the harness whose `cleaningUp` encloses the current task, if any.
    @TaskLocal private static var cleaningUpNamespace: String?

    /// The clients of every service, for tests that cross them all.
    struct Clients: Sendable {
        let auth: any TestClientProtocol
        let users: any TestClientProtocol
        let messages: any TestClientProtocol
        /// Live (a real port): its stream is a websocket.
        let notifications: any TestClientProtocol
        let notificationsPort: Int
        /// A socket-handler instance's port.
        let chatPort: Int
    }

    /// Every service while `body` runs (the HTTP-only ones through their routers, the websocket
    /// ones live), then removes their schemas and queues.
    func runAll(chatLimits: ChatSocketLimits = ChatSocketLimits(), _ body: @Sendable (Clients) async throws -> Void) async throws {
        let auth = try await authApplication()
        let users = try await usersApplication()
        let messages = try await messagesApplication()
        let notifications = try await notificationsApplication()
        let chat = try await socketApplication(instance: "all", limits: chatLimits)
        try await cleaningUp {
            try await auth.test(.router) { authClient in
                try await users.test(.router) { usersClient in
                    try await messages.test(.router) { messagesClient in
                        try await notifications.test(.live) { notificationsClient in
                            try await chat.test(.live) { chatClient in
                                try await awaitConsumers(of: authQueues + usersQueues + messagesQueues + notificationsQueues + socketQueues)
                                try await body(
                                    Clients(
                                        auth: authClient, users: usersClient, messages: messagesClient, notifications: notificationsClient,
                                        notificationsPort: notificationsClient.port!, chatPort: chatClient.port!
                                    ))
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs both services while `body` runs, then removes their schemas and queues.
    func run(_ body: @Sendable (_ auth: any TestClientProtocol, _ users: any TestClientProtocol) async throws -> Void) async throws {
        let auth = try await authApplication()
        let users = try await usersApplication()
        try await cleaningUp {
            try await auth.test(.router) { authClient in
                try await users.test(.router) { usersClient in
                    try await awaitConsumers(of: authQueues + usersQueues)
                    try await body(authClient, usersClient)
                }
            }
        }
    }

    var authQueues: [String] { ["\(namespace)_auth.user-events", "\(namespace)_auth.revocations"] }
    var usersQueues: [String] { ["\(namespace)_users.user-events"] }
    var messagesQueues: [String] { ["\(namespace)_messages.user-events", "\(namespace)_messages.message-sent", "\(namespace)_messages.receipts"] }
    var notificationsQueues: [String] { ["\(namespace)_notifications.events"] }
    /// Exclusive to the connection that consumes it: it exists exactly while its consumer does.
    var notificationsInstanceQueue: String { "\(namespace)_notifications.instance.\(namespace)-n1" }
    var socketQueues: [String] { ["\(namespace)_socket.message-events"] }

    /// Waits until every queue has its consumer. Events published before a service has declared
    /// and bound its queue find no queue and wait out the outbox's retry, longer than a request's
    /// patience for an id it has not heard of (`ReadYourWrites`); a deployment declares its queues
    /// once, a test harness on every run.
    func awaitConsumers(of queues: [String]) async throws {
        let consuming = await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
            for queue in queues where (try? await EventBusAdmin.consumerCount(of: queue, configuration: TestStack.amqp())) ?? 0 == 0 {
                return false
            }
            return true
        }
        guard consuming else { throw HarnessError(message: "not every queue of \(queues) got its consumer within 30 s") }
    }

    func cleanUp() async {
        _ = try? await TestStack.withDatabase(schema: authSchema) { client in
            try await client.query("DROP SCHEMA IF EXISTS \(unescaped: usersSchema.rawValue) CASCADE")
            try await client.query("DROP SCHEMA IF EXISTS \(unescaped: messagesSchema.rawValue) CASCADE")
            try await client.query("DROP SCHEMA IF EXISTS \(unescaped: notificationsSchema.rawValue) CASCADE")
        }
        let queues = authQueues + usersQueues + messagesQueues + notificationsQueues + [notificationsInstanceQueue] + socketQueues
        try? await EventBusAdmin.deleteQueues(queues + queues.map { "\($0).dead" }, configuration: TestStack.amqp())
    }
}

/// A signed-in user as a test holds it: the cookies auth set, and the bearer token.
struct Session: Sendable {
    let userId: String
    let username: String
    let accessToken: String
    let refreshToken: String

    var cookieHeader: HTTPFields { [.cookie: "access_token=\(accessToken)", .origin: "http://127.0.0.1:8080"] }
    var bearer: HTTPFields { [.authorization: "Bearer \(accessToken)"] }
    var refreshCookie: HTTPFields { [.cookie: "refresh_token=\(refreshToken)", .origin: "http://127.0.0.1:8080"] }
}

/// The cookies a response sets, by name: the value and the attribute string.
func setCookies(_ response: TestResponse) -> [String: (value: String, attributes: String)] {
    var cookies: [String: (String, String)] = [:]
    for header in response.headers[values: .setCookie] {
        let parts = header.split(separator: ";", maxSplits: 1)
        let pair = parts[0].split(separator: "=", maxSplits: 1)
        guard pair.count >= 1 else { continue }
        cookies[String(pair[0])] = (pair.count == 2 ? String(pair[1]) : "", parts.count == 2 ? String(parts[1]) : "")
    }
    return cookies
}

func json(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]) ?? [:]
}

func errorCode(_ response: TestResponse) -> String? {
    (json(response)["error"] as? [String: Any])?["code"] as? String
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]

/// Signs up through auth's routes; returns the session it set.
func signUp(_ auth: any TestClientProtocol, username: String, password: String = "correct horse battery") async throws -> Session {
    let body = #"{"username": "\#(username)", "email": "\#(username)@example.com", "password": "\#(password)"}"#
    return try await auth.execute(uri: "/api/auth/signup", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
        guard response.status == .created else { throw HarnessError(message: "signup \(username): \(response.status) \(String(buffer: response.body))") }
        return try session(from: response)
    }
}

func session(from response: TestResponse) throws -> Session {
    let cookies = setCookies(response)
    let user = json(response)["user"] as? [String: Any]
    guard let access = cookies["access_token"]?.value, let refresh = cookies["refresh_token"]?.value,
        let id = user?["id"] as? String, let username = user?["username"] as? String
    else { throw HarnessError(message: "no session in \(String(buffer: response.body))") }
    return Session(userId: id, username: username, accessToken: access, refreshToken: refresh)
}

struct HarnessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
