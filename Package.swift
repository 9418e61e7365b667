// swift-tools-version:6.2
import PackageDescription

// One package for all five services and the shared libraries, so dependencies compile once.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swiftchat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "auth", targets: ["AuthServer"]),
        .executable(name: "users", targets: ["UsersServer"]),
        .executable(name: "messages", targets: ["MessagesServer"]),
        .executable(name: "socket-handler", targets: ["SocketHandlerServer"]),
        .executable(name: "notifications", targets: ["NotificationsServer"]),
        .executable(name: "chat-bench", targets: ["ChatBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C libraries, wrapped as system library targets.
        .systemLibrary(
            name: "CRabbitMQ",
            path: "Shared/CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .systemLibrary(
            name: "CJemalloc",
            path: "Shared/CJemalloc",
            pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            path: "Shared/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // Shared libraries.
        .target(
            name: "Allocator",
            dependencies: ["CJemalloc"],
            path: "Shared/Allocator",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceConfig",
            path: "Shared/ServiceConfig",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BlockingExecutor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/BlockingExecutor",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventContracts",
            path: "Shared/EventContracts",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "EventBus",
            dependencies: [
                "CRabbitMQ",
                "BlockingExecutor",
                "EventContracts",
                "ServiceConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/EventBus",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                "BlockingExecutor",
                "ServiceConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/RedisClient",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresSupport",
            dependencies: [
                "BlockingExecutor",
                "ServiceConfig",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Shared/PostgresSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Outbox",
            dependencies: [
                "BlockingExecutor",
                "EventBus",
                "EventContracts",
                "PostgresSupport",
                "ServiceConfig",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/Outbox",
            resources: [.copy("Migrations")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Shared/Observability",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceHTTP",
            dependencies: [
                "BlockingExecutor",
                "EventContracts",
                "Observability",
                "ServiceConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/ServiceHTTP",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LiveSockets",
            dependencies: [
                "Allocator",
                "BlockingExecutor",
                "EventContracts",
                "RedisClient",
                "ServiceConfig",
                "ServiceHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Shared/LiveSockets",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "ServiceRuntime",
            dependencies: [
                "Allocator",
                "BlockingExecutor",
                "EventBus",
                "EventContracts",
                "Observability",
                "Outbox",
                "PostgresSupport",
                "RedisClient",
                "ServiceConfig",
                "ServiceHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Shared/ServiceRuntime",
            swiftSettings: swiftSettings
        ),

        // Services: a library with the routes, store, migrations and consumers, plus a thin @main.
        .target(
            name: "AuthService",
            dependencies: [
                "EventBus",
                "EventContracts",
                "Outbox",
                "PostgresSupport",
                "RedisClient",
                "ServiceConfig",
                "ServiceHTTP",
                "ServiceRuntime",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/auth/AuthService",
            resources: [.copy("Migrations"), .copy("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "AuthServer", dependencies: ["AuthService", "ServiceRuntime"], path: "Services/auth/AuthServer", swiftSettings: swiftSettings),
        .target(
            name: "UsersService",
            dependencies: [
                "EventBus",
                "EventContracts",
                "Outbox",
                "PostgresSupport",
                "RedisClient",
                "ServiceConfig",
                "ServiceHTTP",
                "ServiceRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/users/UsersService",
            resources: [.copy("Migrations"), .copy("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "UsersServer", dependencies: ["UsersService", "ServiceRuntime"], path: "Services/users/UsersServer", swiftSettings: swiftSettings),
        .target(
            name: "MessagesService",
            dependencies: [
                "EventBus",
                "EventContracts",
                "Outbox",
                "PostgresSupport",
                "ServiceHTTP",
                "ServiceRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/messages/MessagesService",
            resources: [.copy("Migrations"), .copy("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MessagesServer", dependencies: ["MessagesService", "ServiceRuntime"], path: "Services/messages/MessagesServer", swiftSettings: swiftSettings),
        .target(
            name: "SocketHandlerService",
            dependencies: [
                "BlockingExecutor",
                "EventBus",
                "EventContracts",
                "LiveSockets",
                "Observability",
                "RedisClient",
                "ServiceConfig",
                "ServiceHTTP",
                "ServiceRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/socket-handler/SocketHandlerService",
            resources: [.copy("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SocketHandlerServer", dependencies: ["SocketHandlerService", "ServiceRuntime"], path: "Services/socket-handler/SocketHandlerServer",
            swiftSettings: swiftSettings),
        .target(
            name: "NotificationsService",
            dependencies: [
                "EventBus",
                "EventContracts",
                "LiveSockets",
                "Outbox",
                "PostgresSupport",
                "ServiceConfig",
                "ServiceHTTP",
                "ServiceRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Services/notifications/NotificationsService",
            resources: [.copy("Migrations"), .copy("openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "NotificationsServer", dependencies: ["NotificationsService", "ServiceRuntime"], path: "Services/notifications/NotificationsServer",
            swiftSettings: swiftSettings
        ),

        // Tests: every one of them talks to the real servers that `make test` starts.
        .target(
            name: "StackTesting",
            dependencies: [
                "ServiceConfig",
                "EventBus",
                "RedisClient",
                "PostgresSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/StackTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SharedTests",
            dependencies: [
                "StackTesting",
                "Allocator",
                "CJemalloc",
                "BlockingExecutor",
                "EventBus",
                "ServiceConfig",
                "EventContracts",
                "RedisClient",
                "PostgresSupport",
                "Outbox",
                "ServiceHTTP",
                "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/SharedTests",
            swiftSettings: swiftSettings
        ),
        // The load generator of `make bench` (infra/bench.sh), built in release mode.
        .executableTarget(
            name: "ChatBench",
            dependencies: [
                "EventBus",
                "ServiceConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/ChatBench",
            swiftSettings: swiftSettings
        ),
        // Its sockets, without a server: what they keep of the upgrade's reply.
        .testTarget(
            name: "ChatBenchTests",
            dependencies: [
                "ChatBench",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/ChatBenchTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "AuthService",
                "UsersService",
                "MessagesService",
                "SocketHandlerService",
                "NotificationsService",
                "LiveSockets",
                "RedisClient",
                "EventContracts",
                "ServiceRuntime",
                "ServiceHTTP",
                "StackTesting",
                "EventBus",
                "PostgresSupport",
                "ServiceConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ServiceTests",
            swiftSettings: swiftSettings
        ),
    ]
)
