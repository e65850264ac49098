import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP/1.1 plumbing shared by the admin, stats and health servers: binds a listener and
/// answers each connection's request with an `AdminRouter`.
///
/// These ports see a probe or a scrape every few seconds, so each connection carries one
/// request and is closed after the answer (`Connection: close`): the handler stays a
/// three-state machine, and no client can keep a connection busy or pile requests up. Bodies are
/// capped (no endpoint takes one) and every connection is closed `connectionDeadline` after
/// it opened, whatever it is doing, so a trickling client cannot hold one either.
enum AdminHTTPServer {
    /// Largest request body read (and discarded); beyond it the answer is 413.
    static let maxBodyBytes = 8 * 1024
    /// How long any one connection may live.
    static let connectionDeadline = TimeAmount.seconds(10)

    /// Binds `host:port` and serves `router` there. A failed bind is a `ListenerBindError`
    /// that names the listener (`health`, `stats`, `admin`) and the address.
    static func bind(
        _ listener: String,
        host: String,
        port: Int,
        group: any EventLoopGroup,
        router: AdminRouter,
        connectionDeadline: TimeAmount = AdminHTTPServer.connectionDeadline
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The error handler answers a malformed or oversized head (NIO's parser
                    // caps it) with 400 and closes, before it reaches the router.
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(router: router, deadline: connectionDeadline))
                }
            }
            .bind(listener, host: host, port: port)
    }
}

/// Reads one request, answers it through the router, then ends the connection.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Waiting for the request head.
        case idle
        /// Head read; body bytes counted (and dropped) until `.end`.
        case reading(AdminRequest, version: HTTPVersion, bodyBytes: Int)
        /// The answer is being built or written; anything more the client sends is ignored.
        case answering
    }

    private let router: AdminRouter
    private var state = State.idle
    private let lifetime: TimeAmount
    private var deadline: Scheduled<Void>?

    init(router: AdminRouter, deadline: TimeAmount) {
        self.router = router
        self.lifetime = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            self.state = .reading(AdminRequest(method: head.method, uri: head.uri), version: head.version, bodyBytes: 0)
        case (.body(let chunk), .reading(let request, let version, let count)):
            let total = count + chunk.readableBytes
            guard total <= AdminHTTPServer.maxBodyBytes else {
                self.state = .answering
                self.write(.text("request body too large", status: .payloadTooLarge), for: request, version: version, context: context)
                return
            }
            self.state = .reading(request, version: version, bodyBytes: total)
        case (.end, .reading(let request, let version, _)):
            self.state = .answering
            self.dispatch(request, version: version, context: context)
        default:
            // A second request on the connection: it was told `Connection: close`.
            break
        }
    }

    private func dispatch(_ request: AdminRequest, version: HTTPVersion, context: ChannelHandlerContext) {
        switch self.router.resolve(request) {
        case .respond(let response):
            self.write(response, for: request, version: version, context: context)
        case .route(let route) where route.offload:
            let answer = context.eventLoop.makeFutureWithTask { route.handler(request) }
            answer.assumeIsolated().whenSuccess { response in
                self.write(response, for: request, version: version, context: context)
            }
        case .route(let route):
            self.write(route.handler(request), for: request, version: version, context: context)
        }
    }

    private func write(_ response: AdminResponse, for request: AdminRequest, version: HTTPVersion, context: ChannelHandlerContext) {
        // An offloaded answer may come back after the client went away.
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        headers.add(name: "Connection", value: "close")
        for (name, value) in response.headers {
            headers.add(name: name, value: value)
        }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        if request.method != .HEAD, !response.body.isEmpty {
            let body = context.channel.allocator.buffer(string: response.body)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            // Half-close and let the client close: closing with its unread bytes (a body past
            // the cap, a pipelined request) would send a reset that can destroy the answer
            // before the client reads it. The connection deadline bounds a client that never closes.
            let closed = context.eventLoop.makePromise(of: Void.self)
            closed.futureResult.assumeIsolated().whenFailure { _ in context.close(promise: nil) }
            context.close(mode: .output, promise: closed)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.lifetime) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
