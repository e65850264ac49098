import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// One client HTTP/2 stream: decided by its `:authority` like an HTTP/1 request by Host,
/// answered locally when denied (Envoy's shape, gRPC trailers-only for gRPC), otherwise
/// relayed frame by frame over a pooled HTTP/2 connection to the origin, with reads held
/// on either side while the other cannot take more. One access-log line per stream.
final class HTTP2StreamProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum Phase {
        case idle
        case denied
        case connecting([HTTP2Frame.FramePayload])
        case forwarding(HTTP2UpstreamStreamHandler)
        case failed
    }

    private let shared: HTTP2DownstreamConnection
    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    private var record = AccessLogRecord()
    private var start = NIODeadline.now()
    private var upstreamSent: NIODeadline?
    private var grpc = false
    private var requestEnded = false
    private var responseStarted = false
    private var responseEnded = false
    private var logged = false
    private var reads = ReadHold()

    init(shared: HTTP2DownstreamConnection) {
        self.shared = shared
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = self.unwrapInboundIn(data)
        switch (payload, self.phase) {
        case (.headers(let headers), .idle):
            if headers.endStream { self.requestEnded = true }
            self.requestHeaders(headers.headers, endStream: headers.endStream, context: context)
        case (.rstStream, _):
            self.record.responseFlags.insert(.downstreamRemoteReset)
            if case .forwarding(let upstream) = self.phase { upstream.reset(.cancel) }
            self.phase = .failed
        case (.headers(let trailers), _):
            if trailers.endStream { self.requestEnded = true }
            self.relay(payload)
        case (.data(let data), _):
            if data.endStream { self.requestEnded = true }
            if case .byteBuffer(let bytes) = data.data { self.record.bytesReceived &+= UInt64(bytes.readableBytes) }
            self.relay(payload)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding(let upstream) = self.phase { upstream.flush() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let upstream) = self.phase, !self.responseEnded {
            upstream.reset(.cancel)
        }
        if !self.responseEnded, !self.record.responseFlags.contains(.downstreamRemoteReset) {
            self.record.responseFlags.insert(.downstreamConnectionTermination)
        }
        self.finish()
        self.context = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .forwarding(let upstream) = self.phase { upstream.hold(!context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.admit() { context.read() }
    }

    // MARK: request

    private func requestHeaders(_ headers: HPACKHeaders, endStream: Bool, context: ChannelHandlerContext) {
        let runtime = self.shared.runtime
        let config = runtime.config
        self.shared.connection.start(&self.record, at: wallClockMillis())
        self.start = NIODeadline.now()
        let method = headers.first(name: ":method") ?? ""
        let path = headers.first(name: ":path") ?? ""
        let authorityText = headers.first(name: ":authority") ?? headers.first(name: "host")
        self.record.method = method
        self.record.path = path
        self.record.protocol = "HTTP/2"
        self.record.authority = authorityText
        self.record.userAgent = headers.first(name: "user-agent")
        self.grpc = HTTP2LocalReply.isGRPC(contentType: headers.first(name: "content-type"))
        var outgoing = headers
        if let id = headers.first(name: "x-request-id") {
            self.record.requestID = .text(id)
        } else {
            let id = makeRequestID()
            self.record.requestID = .generated(id)
            outgoing.add(name: "x-request-id", value: id.text)
        }

        guard let authorityText, let authority = Authority(authorityText),
            let destination = self.shared.connection.destinationIP,
            let port = self.shared.connection.destinationPort
        else {
            self.phase = .failed
            self.respondLocally(status: 400, flag: .downstreamProtocolError, body: "missing or invalid :authority\n")
            return
        }
        let view = HTTPRequestView(method: method, path: path, header: { [headers] name in headers.first(name: name) })
        let decision = config.policy.decide(
            ConnectionFacts(kind: .http(authority), destination: destination, port: port, request: view)
        )
        self.record.upstreamCluster = decision.cluster
        self.record.routeName = decision.routeName
        if decision.audited {
            self.record.istioPolicyStatus = Decision.auditDeniedStatus
            runtime.metrics.auditDenied(.http, host: authority.host)
        }
        switch decision.action {
        case .deny:
            self.phase = .denied
            runtime.metrics.denied(.http)
            runtime.logger.info(
                "denied http2 \(authority.host) to \(self.shared.connection.destinationText)",
                metadata: ["reason": "\(decision.reason)"]
            )
            switch runtime.role {
            case .sidecar: self.respondLocally(status: 502, flag: nil, body: "")
            case .gateway: self.respondLocally(status: 404, flag: .noRouteFound, body: "")
            }
        case .forward(let target):
            if runtime.role == .gateway, let remoteIP = self.shared.connection.remote?.ipAddress {
                let existing = outgoing[canonicalForm: "x-forwarded-for"].joined(separator: ", ")
                outgoing.replaceOrAdd(name: "x-forwarded-for", value: existing.isEmpty ? remoteIP : "\(existing), \(remoteIP)")
            }
            self.record.xForwardedFor = outgoing.first(name: "x-forwarded-for")
            let first = HTTP2Frame.FramePayload.headers(.init(headers: outgoing, endStream: endStream))
            self.phase = .connecting([first])
            self.hold(true)
            self.connect(target, config: config)
        }
    }

    private func connect(_ target: UpstreamTarget, config: ActiveConfig) {
        let loopBound = NIOLoopBound(self, eventLoop: self.shared.parent.eventLoop)
        self.shared.pool.connection(to: target, config: config) { result in
            let handler = loopBound.value
            guard case .connecting = handler.phase, handler.context != nil else { return }
            switch result {
            case .failure(let failure):
                handler.phase = .failed
                handler.record.upstreamTransportFailureReason = failure.transportFailureReason
                handler.respondLocally(status: 503, flag: failure.responseFlag, body: failure.localReplyBody)
            case .success(let ready):
                handler.record.upstreamHost = ready.connection.remote.logDescription
                handler.record.upstreamLocalAddress = ready.connection.channel.localAddress?.logDescription
                let upstream = HTTP2UpstreamStreamHandler(downstream: handler)
                let upstreamBound = NIOLoopBound(upstream, eventLoop: handler.shared.parent.eventLoop)
                ready.multiplexer.createStreamChannel { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(upstreamBound.value)
                    }
                }.whenComplete { result in
                    let handler = loopBound.value
                    switch result {
                    case .success:
                        handler.streamOpened(upstreamBound.value)
                    case .failure:
                        handler.phase = .failed
                        handler.respondLocally(
                            status: 503, flag: .upstreamConnectionFailure,
                            body: HTTP1LocalReply.resetBody(reason: "connection failure")
                        )
                    }
                }
            }
        }
    }

    private func streamOpened(_ upstream: HTTP2UpstreamStreamHandler) {
        guard case .connecting(let parts) = self.phase, self.context != nil else {
            upstream.reset(.cancel)
            return
        }
        self.phase = .forwarding(upstream)
        self.upstreamSent = NIODeadline.now()
        for part in parts { upstream.send(part) }
        upstream.flush()
        self.hold(!upstream.isWritable)
    }

    /// Passes a request frame on, or keeps it until the upstream stream is open.
    private func relay(_ payload: HTTP2Frame.FramePayload) {
        switch self.phase {
        case .connecting(var parts):
            parts.append(payload)
            self.phase = .connecting(parts)
        case .forwarding(let upstream):
            upstream.send(payload)
            if !upstream.isWritable { self.hold(true) }
        case .idle, .denied, .failed:
            break
        }
    }

    private func hold(_ held: Bool) {
        if self.reads.hold(held), let context = self.context { context.read() }
    }

    // MARK: response, driven by the upstream half

    func upstreamWritable() { self.hold(false) }

    func upstreamPayload(_ payload: HTTP2Frame.FramePayload) {
        guard let context = self.context else { return }
        switch payload {
        case .headers(let headers):
            if !self.responseStarted, let status = headers.headers.first(name: ":status").flatMap(Int.init) {
                if status >= 200 {
                    self.responseStarted = true
                    self.record.responseCode = status
                    if let sent = self.upstreamSent { self.record.upstreamServiceTime = sent.millisecondsElapsed }
                }
            }
            if headers.endStream { self.responseEnded = true }
            context.write(self.wrapOutboundOut(payload), promise: nil)
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data { self.record.bytesSent &+= UInt64(bytes.readableBytes) }
            if data.endStream { self.responseEnded = true }
            context.write(self.wrapOutboundOut(payload), promise: nil)
            if !context.channel.isWritable, case .forwarding(let upstream) = self.phase { upstream.hold(true) }
        case .rstStream:
            self.upstreamReset(flag: .upstreamRemoteReset, reason: "remote reset")
        default:
            break
        }
    }

    func upstreamReadComplete() { self.context?.flush() }

    /// The upstream stream closed: fine after the response ended, a reset otherwise.
    func upstreamClosed() {
        guard !self.responseEnded, case .forwarding = self.phase else { return }
        self.upstreamReset(flag: .upstreamConnectionTermination, reason: "connection termination")
    }

    private func upstreamReset(flag: ResponseFlags, reason: String) {
        guard case .forwarding = self.phase else { return }
        self.phase = .failed
        if self.responseStarted {
            self.record.responseFlags.insert(flag)
            self.responseEnded = true
            self.context?.writeAndFlush(self.wrapOutboundOut(.rstStream(.internalError)), promise: nil)
            self.context?.close(promise: nil)
        } else {
            // Envoy: 503 `upstream_reset_before_response_started{remote_reset}`.
            self.respondLocally(
                status: 503, flag: flag,
                body: HTTP1LocalReply.resetBody(reason: reason)
            )
        }
    }

    // MARK: local answers and the log line

    private func respondLocally(status: Int, flag: ResponseFlags?, body: String) {
        guard let context = self.context, !self.responseStarted else { return }
        let reply = HTTP2LocalReply(status: status, body: body, grpc: self.grpc)
        if let flag { self.record.responseFlags.insert(flag) }
        self.record.responseCode = reply.status
        self.responseStarted = true
        self.responseEnded = true
        var headers = HPACKHeaders([(":status", String(reply.status))])
        for (name, value) in reply.headers { headers.add(name: name, value: value) }
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "server", value: "sluice")
        let bodyBytes = context.channel.allocator.buffer(string: reply.body)
        context.write(self.wrapOutboundOut(.headers(.init(headers: headers, endStream: reply.body.isEmpty))), promise: nil)
        if !reply.body.isEmpty {
            self.record.bytesSent &+= UInt64(bodyBytes.readableBytes)
            context.write(self.wrapOutboundOut(.data(.init(data: .byteBuffer(bodyBytes), endStream: true))), promise: nil)
        }
        if !self.requestEnded {
            // Envoy resets a stream whose request is still arriving once it has answered.
            context.write(self.wrapOutboundOut(.rstStream(.noError)), promise: nil)
        }
        context.flush()
        self.hold(false)
    }

    private func finish() {
        guard !self.logged, self.record.method != nil else { return }
        self.logged = true
        self.record.duration = self.start.millisecondsElapsed
        self.shared.runtime.completedRequest(self.record)
    }
}
