import AuthService
import EventBus
import LiveSockets
import PostgresSupport
import RedisClient
import ServiceConfig
import ServiceHTTP
import ServiceRuntime
import SocketHandlerService
import Testing

/// One integer setting: values it must refuse at start, and one it takes.
struct RangedSetting: Sendable, CustomTestStringConvertible {
    let key: String
    let refused: [String]
    let accepted: Int
    /// Reads the configuration that holds the setting, as the service does at start, and returns
    /// the setting's value in the unit it is given in.
    let read: @Sendable (EnvironmentReader) throws -> Int

    var testDescription: String { key }

    static func seconds(_ duration: Duration) -> Int { Int(duration.components.seconds) }

    static let all: [RangedSetting] = [
        RangedSetting(key: "HTTP_PORT", refused: ["0", "65536", "-1", "http"], accepted: 18_080) {
            try HTTPConfiguration(environment: $0, defaultPort: 8081).port
        },
        RangedSetting(key: "DATABASE_PORT", refused: ["0", "70000"], accepted: 5432) {
            try DatabaseConfiguration(environment: $0, defaultSchema: "messages").port
        },
        RangedSetting(key: "DATABASE_POOL_SIZE", refused: ["0", "1001", "twenty"], accepted: 6) {
            try DatabaseConfiguration(environment: $0, defaultSchema: "messages").maximumConnections
        },
        // PostgresNIO closes a connection idle for 60 s before a longer keep-alive would check it.
        RangedSetting(key: "DATABASE_KEEPALIVE_SECONDS", refused: ["-30", "60", "30s"], accepted: 0) {
            seconds(try DatabaseConfiguration(environment: $0, defaultSchema: "messages").keepAlive ?? .zero)
        },
        RangedSetting(key: "REDIS_PORT", refused: ["0", "65536"], accepted: 6379) { try RedisConfiguration(environment: $0).port },
        RangedSetting(key: "REDIS_POOL_SIZE", refused: ["0", "-4", "257"], accepted: 8) { try RedisConfiguration(environment: $0).poolSize },
        RangedSetting(key: "REDIS_TIMEOUT_MS", refused: ["0", "3600001"], accepted: 500) {
            try RedisConfiguration(environment: $0).commandTimeout.milliseconds
        },
        RangedSetting(key: "AMQP_PORT", refused: ["0", "65536"], accepted: 5672) { try AMQPConfiguration(environment: $0).port },
        RangedSetting(key: "AMQP_BATCH_INTERVAL_MS", refused: ["-1", "1001", "5ms"], accepted: 20) {
            try AMQPConfiguration(environment: $0).batchInterval.milliseconds
        },
        // The protocol's field is 16 bits; a value beyond Int32's range trapped at the C client.
        RangedSetting(key: "AMQP_HEARTBEAT_SECONDS", refused: ["-1", "65536", "99999999999"], accepted: 0) {
            try AMQPConfiguration(environment: $0).heartbeatSeconds
        },
        RangedSetting(key: "AMQP_PUBLISH_TIMEOUT_SECONDS", refused: ["0", "3601"], accepted: 30) {
            seconds(try AMQPConfiguration(environment: $0).publishTimeout)
        },
        // 0 would ping every socket at each of the keeper's one-second looks; 2^63 − 1, never.
        RangedSetting(key: "WS_PING_SECONDS", refused: ["0", "-20", "3601", "9223372036854775807"], accepted: 5) {
            seconds(try LiveSocketKeeper.pingPeriod($0))
        },
        RangedSetting(key: "ACCESS_TOKEN_TTL_SECONDS", refused: ["0", "-900", "86401"], accepted: 60) {
            seconds(try AuthConfiguration(environment: $0, privateKeyPEM: "").accessTokenLifetime)
        },
        RangedSetting(key: "REFRESH_TOKEN_TTL_SECONDS", refused: ["0", "31622401"], accepted: 86_400) {
            seconds(try AuthConfiguration(environment: $0, privateKeyPEM: "").refreshTokenLifetime)
        },
        RangedSetting(key: "BCRYPT_COST", refused: ["9", "17"], accepted: 12) {
            Int(try AuthConfiguration(environment: $0, privateKeyPEM: "").bcryptCost)
        },
        RangedSetting(key: "SIGNIN_MAX_FAILURES_PER_ACCOUNT", refused: ["0", "-5", "1001"], accepted: 3) {
            try AuthConfiguration(environment: $0, privateKeyPEM: "").maxFailuresPerAccount
        },
        RangedSetting(key: "SIGNIN_MAX_FAILURES_PER_ADDRESS", refused: ["0", "1001"], accepted: 50) {
            try AuthConfiguration(environment: $0, privateKeyPEM: "").maxFailuresPerAddress
        },
        RangedSetting(key: "SIGNIN_FAILURE_WINDOW_SECONDS", refused: ["0", "86401"], accepted: 60) {
            seconds(try AuthConfiguration(environment: $0, privateKeyPEM: "").failureWindow)
        },
        // The default heartbeat is 10 s: a TTL shorter than twice it can let an entry lapse.
        RangedSetting(key: "PRESENCE_TTL_SECONDS", refused: ["1", "19", "3601"], accepted: 20) {
            seconds(try SocketHandlerService.Configuration(environment: $0).presenceTTL)
        },
        // The default TTL is 30 s: a heartbeat longer than half of it can let an entry lapse.
        RangedSetting(key: "PRESENCE_HEARTBEAT_SECONDS", refused: ["0", "16", "30"], accepted: 15) {
            seconds(try SocketHandlerService.Configuration(environment: $0).heartbeat)
        },
        RangedSetting(key: "PRESENCE_GRACE_SECONDS", refused: ["-1", "3601"], accepted: 0) {
            seconds(try SocketHandlerService.Configuration(environment: $0).presenceGrace)
        },
        RangedSetting(key: "SHUTDOWN_GRACE_SECONDS", refused: ["-1", "3601"], accepted: 5) {
            seconds(try ServiceDefinition.shutdownGrace($0))
        },
    ]
}

@Suite("Configuration: every integer setting is checked against its range at start")
struct ConfigurationTests {
    @Test(
        "a value out of range, or not a whole number, is an error naming the setting and the value; a value in range is taken; the default is in range",
        arguments: RangedSetting.all)
    func ranged(_ setting: RangedSetting) throws {
        for value in setting.refused {
            let error = #expect(throws: ConfigurationError.self, "\(setting.key)=\(value)") {
                try setting.read(EnvironmentReader([setting.key: value]))
            }
            #expect(error?.key == setting.key)
            #expect(error?.value == value)
        }
        #expect(try setting.read(EnvironmentReader([setting.key: "\(setting.accepted)"])) == setting.accepted)
        // The reader does not check a default: given as a value, it must be taken.
        let byDefault = try setting.read(EnvironmentReader([:]))
        #expect(try setting.read(EnvironmentReader([setting.key: "\(byDefault)"])) == byDefault)
    }

    @Test("the error says what was expected; a presence heartbeat and TTL too close blame the one that was set")
    func errorText() {
        func error(_ values: [String: String]) -> String? {
            #expect(throws: ConfigurationError.self) { try SocketHandlerService.Configuration(environment: EnvironmentReader(values)) }?
                .description
        }
        #expect(error(["WS_PING_SECONDS": "0"]) == "environment variable WS_PING_SECONDS=0 is invalid: expected 1 to 3600 (seconds)")
        #expect(
            error(["PRESENCE_TTL_SECONDS": "10", "PRESENCE_HEARTBEAT_SECONDS": "10"])
                == "environment variable PRESENCE_HEARTBEAT_SECONDS=10 is invalid: expected at most half of PRESENCE_TTL_SECONDS (10)")
        #expect(
            error(["PRESENCE_TTL_SECONDS": "10"])
                == "environment variable PRESENCE_TTL_SECONDS=10 is invalid: expected at least twice PRESENCE_HEARTBEAT_SECONDS (10)")
    }
}
