import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The checks of each live-socket path, shared by the route (which throws their error) and the
/// server's `UpgradeGate` (which asks them before the upgrader does).
public final class UpgradeAdmission: Sendable {
    public typealias Check = @Sendable (HTTPFields) async throws -> Void
    private let checks = Mutex<[String: Check]>([:])

    public init() {}

    /// Registers the checks of the upgrades to `path`.
    public func register(_ path: String, _ check: @escaping Check) {
        checks.withLock { $0[path] = check }
    }

    /// Whether an upgrade to `uri` with these headers passes its path's checks.
    func admits(_ headers: HTTPFields, uri: String) async -> Bool {
        let path = String(uri.prefix { $0 != "?" })
        guard let check = checks.withLock({ $0[path] }) else { return true }
        do {
            try await check(headers)
            return true
        } catch {
            return false
        }
    }
}

/// Decides, before the websocket upgrader sees a request, whether its upgrade would be accepted.
///
/// A refused upgrade must be an HTTP answer in the API's error shape (401, 403, 429…), but an
/// upgrade the websocket upgrader declines ends as a bare 400. So an upgrade request that would be
/// refused loses its `Upgrade` header here and goes on to the router as a plain request: its route
/// runs the same checks and answers with the error they throw.
final class UpgradeGate: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: a channel handler lives on its channel's event loop; its state is only touched
    // there (the async check hops back before using it).
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let admission: UpgradeAdmission
    private var held: [HTTPServerRequestPart] = []
    private var deciding = false

    init(admission: UpgradeAdmission) {
        self.admission = admission
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
        var fields = HTTPFields()
        for (name, value) in head.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let admission = admission
        let uri = head.uri
        let loop = context.eventLoop
        let contextBox = NIOLoopBound(context, eventLoop: loop)
        let selfBox = NIOLoopBound(self, eventLoop: loop)
        loop.makeFutureWithTask { await admission.admits(fields, uri: uri) }.whenSuccess { admitted in
            selfBox.value.release(context: contextBox.value, admitted: admitted)
        }
    }

    /// Passes the held parts on: untouched when admitted (and then steps aside: the upgrader
    /// replaces the HTTP handlers), as a plain request when not.
    private func release(context: ChannelHandlerContext, admitted: Bool) {
        deciding = false
        let parts = held
        held = []
        for part in parts {
            if !admitted, case .head(var head) = part {
                head.headers.remove(name: "upgrade")
                head.headers.replaceOrAdd(name: "connection", value: "close")
                context.fireChannelRead(wrapInboundOut(.head(head)))
            } else {
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
        context.fireChannelReadComplete()
        if admitted { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }
}

/// The HTTP/1 server with websocket upgrades whose refused upgrades answer in the error shape
/// (see `UpgradeGate`).
struct GatedWebSocketChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let inner: HTTP1WebSocketUpgradeChannel
    let admission: UpgradeAdmission

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMap { value in
            channel.eventLoop.makeCompletedFuture {
                let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                try channel.pipeline.syncOperations.addHandler(UpgradeGate(admission: admission), position: .after(decoder))
                return value
            }
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with websocket upgrades through `router`, refused upgrades answering in the error
    /// shape: the routes registered their checks with `admission`.
    public static func gatedWebSockets(
        router: Router<ServiceRequestContext>, configuration: WebSocketServerConfiguration, admission: UpgradeAdmission
    ) -> HTTPServerBuilder {
        let responder = router.buildResponder()
        return HTTPServerBuilder { httpResponder in
            GatedWebSocketChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: httpResponder, webSocketResponder: responder, configuration: .init(http1: .init(), ws: configuration)
                ),
                admission: admission
            )
        }
    }
}
