import Logging
import NIOCore
import SluiceCore

/// The gateway's HTTP CONNECT listener (RFC 9110 §9.3.6): frames `CONNECT host:port` with the
/// project's HTTP/1 framer, decides it as the sidecar decides an app's CONNECT
/// (`Tunnel.decide`), dials the target, answers `200 OK` (or 403 for an unregistered host,
/// 503 when the target cannot be reached, 405 to another method, 400 to a bad request, all
/// `HTTP1LocalReply`s) and splices the raw tunnel (`Tunnel.splice`) — the shape of
/// swift-nio-examples' connect-proxy, on the same code path as the sidecar's CONNECT.
///
/// Bytes that arrive behind the CONNECT head (in its segment, or while dialling) and the
/// client's EOF are kept in a `HeldInbound` and go first into the tunnel, the EOF after them;
/// further reads wait for the splice (`ReadHoldStateMachine`), so a client cannot make the
/// gateway buffer more than one read while it dials.
final class ConnectServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case readingHead
        case dialling
        case answered
    }

    let runtime: ProxyRuntime
    let connection: DownstreamConnection
    private var framer: HTTP1Framer
    /// A head not complete yet.
    private var headBytes: ByteBuffer?
    /// The tunnel's first bytes and EOF, while dialling.
    private var held = HeldInbound()
    private var readHold = ReadHoldStateMachine()
    private var state = State.readingHead
    private var record = AccessLogRecord()
    private var logged = false

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
        let limits = runtime.config.limits
        self.framer = HTTP1Framer(
            kind: .request,
            limits: HTTP1Limits(maxHeadBytes: limits.maxRequestHeadBytes, maxFields: limits.maxRequestHeaders)
        )
        connection.start(&self.record)
    }

    /// Installs the handler on a fresh gateway connection.
    static func install(on channel: any Channel, runtime: ProxyRuntime, connection: DownstreamConnection) throws {
        try channel.pipeline.syncOperations.addHandler(ConnectServerHandler(runtime: runtime, connection: connection))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        switch self.state {
        case .readingHead:
            if var buffer = self.headBytes.take() {
                buffer.writeBuffer(&chunk)
                self.frameHead(&buffer, context: context)
            } else {
                self.frameHead(&chunk, context: context)
            }
        case .dialling:
            self.held.append(&chunk)
        case .answered:
            break
        }
    }

    func read(context: ChannelHandlerContext) {
        let dialling: Bool
        if case .dialling = self.state { dialling = true } else { dialling = false }
        if case .read = self.readHold.read(held: dialling) { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if case .dialling = self.state {
            // Replayed behind the tunnel's first bytes once spliced.
            self.held.holdInputClosed()
            return
        }
        // A client that closes before its CONNECT is complete, or after a refusal.
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.runtime.logger.debug("CONNECT listener error: \(error)")
        if case .readingHead = self.state {
            self.refuse(.badRequest, flag: .downstreamProtocolError, context: context)
        }
        context.close(promise: nil)
    }

    private func frameHead(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        let event: HTTP1Framer.Event
        do {
            event = try self.framer.next(&buffer)
        } catch {
            self.runtime.logger.debug("CONNECT listener: bad request: \(error)")
            self.refuse(.badRequest, flag: .downstreamProtocolError, context: context)
            return
        }
        guard case .head(let head) = event else {
            // Only a head or "need more" come first.
            self.headBytes = buffer
            return
        }
        // What follows the head of a CONNECT is the tunnel's (a CONNECT has no body).
        self.held.append(&buffer)
        self.handleHead(head, context: context)
    }

    private func handleHead(_ head: HTTP1Head, context: ChannelHandlerContext) {
        let target = head.string(head.target)
        self.record.method = head.methodString
        self.record.authority = target
        self.record.protocol = "HTTP/1.\(head.versionMinor)"
        self.record.userAgent = head.userAgent.map(head.string)
        self.record.requestId = head.firstValue("x-request-id").map(head.string)

        guard head.knownMethod == .connect else {
            self.refuse(.methodNotAllowed, flag: nil, context: context)
            return
        }
        guard let authority = Authority(target, as: .hostAndPort) else {
            self.refuse(.badRequest, flag: nil, context: context)
            return
        }
        let config = self.runtime.config
        if let denial = self.authorizationDenial(head, target: target, config: config) {
            // Envoy's RBAC HTTP filter runs before the router: 403 "RBAC: access denied".
            self.record.responseCodeDetails = denial.responseCodeDetails
            self.refuse(.forbidden, flag: nil, body: HTTP1LocalReply.rbacDeniedBody, context: context)
            return
        }
        guard let upstreamTarget = Tunnel.decide(connectTo: authority, runtime: self.runtime, config: config, record: &self.record, source: "") else {
            self.refuse(.forbidden, flag: .noRouteFound, context: context)
            return
        }
        self.state = .dialling
        self.runtime.connector.connect(
            target: upstreamTarget,
            gateway: nil,
            eventLoop: context.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            switch result {
            case .success(let upstream):
                self.splice(upstream, context: context)
            case .failure(let failure):
                self.record.upstreamTransportFailureReason = failure.transportFailureReason
                self.refuse(.serviceUnavailable, flag: failure.responseFlag, context: context)
            }
        }
    }

    /// Answers 200, then glues the tunnel: the bytes held go first, the client's EOF (if it
    /// came) after them, and reading resumes.
    private func splice(_ upstream: UpstreamConnection, context: ChannelHandlerContext) {
        guard case .dialling = self.state, context.channel.isActive else {
            upstream.channel.close(promise: nil)
            return
        }
        self.state = .answered
        Tunnel.noteEstablished(upstream, in: &self.record)
        var answer = context.channel.allocator.buffer(capacity: 96)
        HTTP1LocalReply.writeConnectEstablished(versionMinor: 1, date: HTTPDate.now(), to: &answer)
        context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)

        let record = self.record
        let runtime = self.runtime
        let start = self.connection.start
        let replay = self.held.takeForReplay()
        let downstream = context.channel
        do {
            try Tunnel.splice(downstream: downstream, upstream: upstream.channel, fromApp: replay.bytes) { counters in
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
        runtime.metrics.tcpOpened(cluster: record.upstreamCluster ?? "-", connection: self.connection)
        // The glue behind this handler half-closes the upstream after the bytes written above.
        if replay.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        let readHeld = self.readHold.resume(held: false)
        GlueHandler.startReading(upstream.channel)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if readHeld { downstream.read() }
    }

    /// Answers `status` (with `body`, `connection: close`), logs the request and closes.
    private func refuse(_ status: LocalStatus, flag: ResponseFlags?, body: String = "", context: ChannelHandlerContext) {
        self.state = .answered
        self.record.responseCode = status.code
        if let flag { self.record.responseFlags.insert(flag) }
        var reply = context.channel.allocator.buffer(capacity: HTTP1LocalReply.capacity(body: body))
        self.record.bytesSent = UInt64(
            HTTP1LocalReply.write(status, body: body, versionMinor: 1, close: true, isHEAD: false, date: HTTPDate.now(), to: &reply))
        self.logOnce()
        context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
        context.close(promise: nil)
    }

    private func logOnce() {
        guard !self.logged else { return }
        self.logged = true
        self.record.duration = self.connection.start.millisecondsElapsed
        self.runtime.completedRequest(self.record)
    }
}
