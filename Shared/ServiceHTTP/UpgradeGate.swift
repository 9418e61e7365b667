import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import Synchronization

/// The live-socket paths and how each admits an upgrade: its checks, and what to put on the
/// channel once it is a websocket.
public final class UpgradeAdmission: Sendable {
    /// Puts an admitted socket's handlers on its channel (the websocket codec is already there).
    /// Data the client sent meanwhile waits until the future completes.
    public typealias Install = @Sendable (any Channel) -> EventLoopFuture<Void>
    /// Runs the path's checks (throwing their error) and returns how to install the socket.
    public typealias Admit = @Sendable (HTTPFields) async throws -> Install
    private let paths = Mutex<[String: Admit]>([:])
    /// How many connections the server lets open at once.
    public let openings: OpeningLimit

    public init(openings: OpeningLimit = OpeningLimit()) {
        self.openings = openings
    }

    /// Registers the upgrades to `path`.
    public func register(_ path: String, _ admit: @escaping Admit) {
        paths.withLock { $0[path] = admit }
    }

    var isEmpty: Bool { paths.withLock { $0.isEmpty } }

    /// How to install the socket when an upgrade to `uri` with these headers passes its path's
    /// checks; nil when it does not, or nothing upgrades there.
    func admit(_ headers: HTTPFields, uri: String) async -> Install? {
        let path = String(uri.prefix { $0 != "?" })
        guard let admit = paths.withLock({ $0[path] }) else { return nil }
        return try? await admit(headers)
    }
}

/// Decides, before the websocket upgrader sees a request, whether its upgrade is admitted.
///
/// A refused upgrade must be an HTTP answer in the API's error shape (401, 403, 429…), but an
/// upgrade the websocket upgrader declines ends as a bare 400. So an upgrade request that is
/// refused loses its `Upgrade` header here and goes on to the router as a plain request: its route
/// runs the same checks and answers with the error they throw. An admitted one leaves what to
/// install in `admitted`, for the upgrader.
final class UpgradeGate: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: a channel handler lives on its channel's event loop; its state is only touched
    // there (the async check hops back before using it).
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let admission: UpgradeAdmission
    private let admitted: NIOLoopBoundBox<UpgradeAdmission.Install?>
    private var held: [HTTPServerRequestPart] = []
    private var deciding = false

    init(admission: UpgradeAdmission, admitted: NIOLoopBoundBox<UpgradeAdmission.Install?>) {
        self.admission = admission
        self.admitted = admitted
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if deciding {
            held.append(part)
            return
        }
        guard case .head(let head) = part, head.headers["upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            context.fireChannelRead(data)
            return
        }
        deciding = true
        held.append(part)
        let fields = HTTPFields(
            head.headers.compactMap { name, value in HTTPField.Name(name).map { HTTPField(name: $0, value: value) } })
        let admission = admission
        let uri = head.uri
        let loop = context.eventLoop
        let contextBox = NIOLoopBound(context, eventLoop: loop)
        let selfBox = NIOLoopBound(self, eventLoop: loop)
        loop.makeFutureWithTask { await admission.admit(fields, uri: uri) }.whenSuccess { install in
            selfBox.value.release(context: contextBox.value, install: install)
        }
    }

    /// Passes the held parts on: untouched when admitted (and then steps aside: the upgrader
    /// replaces the HTTP handlers), as a plain request when not.
    private func release(context: ChannelHandlerContext, install: UpgradeAdmission.Install?) {
        deciding = false
        admitted.value = install
        let parts = held
        held = []
        for part in parts {
            if install == nil, case .head(var head) = part {
                head.headers.remove(name: "upgrade")
                head.headers.replaceOrAdd(name: "connection", value: "close")
                context.fireChannelRead(wrapInboundOut(.head(head)))
            } else {
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
        context.fireChannelReadComplete()
        if install != nil { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }
}

/// HTTP/1 with websocket upgrades that hold no task once upgraded: the installed handlers own
/// the socket, so an idle one costs its channel and its state, not a suspended task's frames.
/// Refused upgrades answer in the error shape (see `UpgradeGate`).
struct LiveSocketServerChannel: ServerChildChannel, HTTPChannelHandler {
    enum Upgrade: Sendable {
        case upgraded
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case failed(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgrade: EventLoopFuture<Upgrade>
        let channel: any Channel
    }

    /// The largest frame the decoder reads; each path's own message limit is its handlers'.
    static let maxFrameSize = 64 * 1024
    /// NIO's default starts at 2 KiB.
    static let readBuffer = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 64 * 1024)

    let responder: HTTPChannelHandler.Responder
    let admission: UpgradeAdmission

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // A connection keeps its read buffer while it waits (an idle live socket for hours):
            // start it small; it grows as soon as reads fill it.
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.readBuffer)
            let admitted = NIOLoopBoundBox<UpgradeAdmission.Install?>(nil, eventLoop: channel.eventLoop)
            let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<Upgrade>(
                maxFrameSize: Self.maxFrameSize,
                shouldUpgrade: { channel, _ in
                    attempted.value = true
                    return channel.eventLoop.makeSucceededFuture(admitted.value == nil ? nil : HTTPHeaders())
                },
                upgradePipelineHandler: { channel, _ in
                    guard let install = admitted.value else { return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState) }
                    admitted.value = nil
                    return install(channel).map { .upgraded }
                }
            )
            let upgrading = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        // Admitted but not upgraded: the request was no valid websocket
                        // handshake (its head is consumed), so it is answered with 400.
                        return attempted.value || admitted.value != nil ? .failed(http) : .notUpgraded(http)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Upgrade>(upgradeConfiguration: upgrading)
            configuration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            configuration.enableErrorHandling = false  // Hummingbird answers errors
            configuration.enableResponseHeaderValidation = false  // HTTPTypes validates
            let upgrade = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            let openings = admission.openings
            upgrade.whenComplete { _ in openings.decided(channel) }
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(UpgradeGate(admission: admission, admitted: admitted), position: .after(decoder))
            return Value(upgrade: upgrade, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgrade.get() {
            case .upgraded:
                return  // the socket's handlers own the channel from here
            case .notUpgraded(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .failed(let http):
                try await http.executeThenClose { _, outbound in
                    let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
                    try await outbound.write(contentsOf: [.head(head), .end(nil)])
                }
            }
        } catch {
            logger.info("connection ended during its upgrade", metadata: ["error": "\(error)"])
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the live-socket upgrades registered with `admission`.
    public static func liveSockets(admission: UpgradeAdmission) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in LiveSocketServerChannel(responder: responder, admission: admission) }
    }
}
