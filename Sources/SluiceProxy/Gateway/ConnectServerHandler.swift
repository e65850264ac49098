import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// The gateway's HTTP CONNECT listener (RFC 9110 §9.3.6): reads `CONNECT host:port`,
/// applies the gateway's registry, dials the target, answers `200 Connection established`
/// (or 403 for an unregistered host, 503 when the target cannot be reached), then removes
/// the HTTP codec and glues the raw tunnel — the shape of swift-nio-examples' connect-proxy.
final class ConnectServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case beganConnecting
        case awaitingEnd(UpstreamConnection)
        case awaitingConnection(pendingBytes: [NIOAny])
        case upgradeComplete(pendingBytes: [NIOAny])
        case upgradeFailed
    }

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private let hold: InputClosedHold
    private let decoder: ByteToMessageHandler<HTTPRequestDecoder>
    private let encoder: HTTPResponseEncoder
    private var state = State.idle
    private var record: AccessLogRecord

    init(
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        hold: InputClosedHold,
        decoder: ByteToMessageHandler<HTTPRequestDecoder>,
        encoder: HTTPResponseEncoder
    ) {
        self.runtime = runtime
        self.connection = connection
        self.hold = hold
        self.decoder = decoder
        self.encoder = encoder
        self.record = AccessLogRecord()
        connection.start(&self.record)
    }

    /// Installs the EOF hold, decoder, encoder and this handler on a fresh gateway connection.
    static func install(on channel: any Channel, runtime: ProxyRuntime, connection: DownstreamConnection) throws {
        // The client's EOF must not reach the decoder while it buffers tunnel bytes.
        let hold = InputClosedHold()
        // Bytes that arrive behind the CONNECT head belong to the tunnel: forwarded on removal.
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        // No automatic framing: a 2xx CONNECT answer has no body and must not be chunked.
        var encoderConfiguration = HTTPResponseEncoder.Configuration()
        encoderConfiguration.automaticallySetFramingHeaders = false
        let encoder = HTTPResponseEncoder(configuration: encoderConfiguration)
        let handler = ConnectServerHandler(runtime: runtime, connection: connection, hold: hold, decoder: decoder, encoder: encoder)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(hold)
        try sync.addHandler(decoder)
        try sync.addHandler(encoder)
        try sync.addHandler(handler)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .idle:
            self.handleInitialMessage(context: context, data: self.unwrapInboundIn(data))
        case .beganConnecting:
            // Only .end can follow the head of a CONNECT.
            if case .end = self.unwrapInboundIn(data) {
                self.state = .awaitingConnection(pendingBytes: [])
                self.removeDecoder(context: context)
            }
        case .awaitingEnd(let connection):
            if case .end = self.unwrapInboundIn(data) {
                self.state = .upgradeComplete(pendingBytes: [])
                self.removeDecoder(context: context)
                self.glue(connection, context: context)
            }
        case .awaitingConnection(var pendingBytes):
            // Tunnel bytes the decoder forwarded while we still dial.
            self.state = .awaitingConnection(pendingBytes: [])
            pendingBytes.append(data)
            self.state = .awaitingConnection(pendingBytes: pendingBytes)
        case .upgradeComplete(var pendingBytes):
            self.state = .upgradeComplete(pendingBytes: [])
            pendingBytes.append(data)
            self.state = .upgradeComplete(pendingBytes: pendingBytes)
        case .upgradeFailed:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Once the CONNECT is accepted the hold keeps the EOF until the tunnel is glued, so
        // only a client that closes before (or after a refusal) gets here.
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.runtime.logger.debug("CONNECT listener error: \(error)")
        if case .idle = self.state {
            self.record.responseCode = 400
            self.record.responseFlags.insert(.downstreamProtocolError)
            self.logOnce()
            self.respond(context: context, status: .badRequest)
        }
        context.close(promise: nil)
    }

    private func handleInitialMessage(context: ChannelHandlerContext, data: HTTPServerRequestPart) {
        guard case .head(let head) = data else {
            self.state = .upgradeFailed
            context.close(promise: nil)
            return
        }
        self.record.method = head.method.rawValue
        self.record.authority = head.uri
        self.record.protocol = "HTTP/\(head.version.major).\(head.version.minor)"
        self.record.userAgent = head.headers.first(name: "user-agent")
        self.record.requestId = head.headers.first(name: "x-request-id")

        guard head.method == .CONNECT else {
            self.state = .upgradeFailed
            self.record.responseCode = 405
            self.logOnce()
            self.respond(context: context, status: .methodNotAllowed)
            context.close(promise: nil)
            return
        }
        guard let target = Authority(head.uri, as: .hostAndPort) else {
            self.state = .upgradeFailed
            self.record.responseCode = 400
            self.logOnce()
            self.respond(context: context, status: .badRequest)
            context.close(promise: nil)
            return
        }
        let config = self.runtime.config
        guard let upstreamTarget = Tunnel.decide(connectTo: target, runtime: self.runtime, config: config, record: &self.record, source: "") else {
            self.state = .upgradeFailed
            self.record.responseCode = 403
            self.record.responseFlags.insert(.noRouteFound)
            self.logOnce()
            self.respond(context: context, status: .forbidden)
            context.close(promise: nil)
            return
        }
        self.hold.hold()
        self.state = .beganConnecting
        self.runtime.connector.connect(
            target: upstreamTarget,
            gateway: nil,
            eventLoop: context.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            switch result {
            case .success(let upstream):
                self.connectSucceeded(upstream, context: context)
            case .failure(let failure):
                self.state = .upgradeFailed
                self.record.responseCode = 503
                self.record.responseFlags.insert(failure.responseFlag)
                self.record.upstreamTransportFailureReason = failure.transportFailureReason
                self.logOnce()
                self.respond(context: context, status: .serviceUnavailable)
                context.close(promise: nil)
            }
        }
    }

    private func connectSucceeded(_ upstream: UpstreamConnection, context: ChannelHandlerContext) {
        switch self.state {
        case .beganConnecting:
            self.state = .awaitingEnd(upstream)
        case .awaitingConnection(let pendingBytes):
            self.state = .upgradeComplete(pendingBytes: pendingBytes)
            self.glue(upstream, context: context)
        default:
            upstream.channel.close(promise: nil)
        }
    }

    private func glue(_ upstream: UpstreamConnection, context: ChannelHandlerContext) {
        Tunnel.noteEstablished(upstream, in: &self.record)
        var headers = HTTPHeaders()
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "server", value: "sluice")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.pipeline.syncOperations.removeHandler(self.encoder, promise: nil)

        let record = self.record
        let runtime = self.runtime
        let start = self.connection.start
        do {
            // The tunnel bytes read while dialling are replayed through the pipeline below,
            // behind the decoder's own, so that the client's held EOF follows them.
            try Tunnel.splice(downstream: context.channel, upstream: upstream.channel) { counters in
                var record = record
                record.bytesReceived = counters.downstreamBytes
                record.bytesSent = counters.upstreamBytes
                record.duration = start.millisecondsElapsed
                runtime.completedConnection(record)
            }
        } catch {
            upstream.channel.close(promise: nil)
            context.close(promise: nil)
            return
        }
        runtime.metrics.tcpOpened(cluster: record.upstreamCluster ?? "-")
        if case .upgradeComplete(let pendingBytes) = self.state {
            self.state = .upgradeComplete(pendingBytes: [])
            for data in pendingBytes { context.fireChannelRead(data) }
            if !pendingBytes.isEmpty { context.fireChannelReadComplete() }
        }
        // The client's EOF, if it came while dialling, goes after every tunnel byte: the
        // decoder forwards what it buffered when its (deferred) removal runs, which was
        // scheduled before this task.
        let hold = self.hold
        context.eventLoop.assumeIsolated().execute { hold.release() }
        GlueHandler.startReading(upstream.channel)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func removeDecoder(context: ChannelHandlerContext) {
        context.pipeline.syncOperations.removeHandler(self.decoder, promise: nil)
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus) {
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "0")
        headers.add(name: "connection", value: "close")
        headers.add(name: "server", value: "sluice")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    private var logged = false
    private func logOnce() {
        guard !self.logged else { return }
        self.logged = true
        self.record.duration = self.connection.start.millisecondsElapsed
        self.runtime.completedRequest(self.record)
    }
}
