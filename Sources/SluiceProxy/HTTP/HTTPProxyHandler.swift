import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// Proxies HTTP/1.x requests on one downstream connection, deciding **each request** on its
/// own Host, so a keep-alive connection cannot switch to an unregistered host.
///
/// Requests are handled one at a time: a pipelined request that arrives while one is in
/// flight is queued (and reading paused) until the response in flight has ended. Unlike
/// NIO's `HTTPServerPipelineHandler`, reading is paused only when a client really
/// pipelines, so a keep-alive request costs no epoll re-registration.
/// until the previous response has ended). Bodies stream in both directions with
/// backpressure: a downstream `read()` is held while the upstream is not writable, and the
/// upstream's while the downstream is not. The upstream connection is kept for the next
/// request when it goes to the same target.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private var context: ChannelHandlerContext?
    private var exchange: HTTPExchange?
    private var upstream: UpstreamHTTPHandler?
    private var pendingRead = false
    private var closing = false
    /// Draining: close once the exchange in flight is done.
    private var draining = false
    /// The limits in force for the current request: read with the config once per request,
    /// not again for each timer.
    private var limits = Limits()
    /// Pipelined request parts waiting for the exchange in flight to finish.
    private var queued = CircularBuffer<HTTPServerRequestPart>(initialCapacity: 0)
    private var queueing = false
    /// Completes when the last response's final bytes have been written to the socket.
    private var lastResponseEnd: EventLoopFuture<Void>?
    /// What the connection is waiting for, and until when (header read, idle, response).
    private var deadline = ConnectionDeadline.none
    /// The one timer of this connection and when it fires. It is re-armed lazily: moving a
    /// deadline later costs nothing per request; the timer, when it fires early, re-arms.
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    // MARK: downstream events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let limits = self.runtime.config.limits
        self.limits = limits
        self.setDeadline(.firstHead(.now() + TimeAmount(limits.headerReadTimeout)), context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.context = nil
        self.releaseUpstream()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = Self.unwrapInboundIn(data)
        if self.queueing {
            self.queued.append(part)
            return
        }
        if case .head = part, self.exchange != nil {
            // Pipelined behind a request still in flight: it waits its turn.
            self.queueing = true
            self.queued.append(part)
            return
        }
        self.handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            self.requestHead(head, context: context)
        case .body(let body):
            self.requestBody(body)
        case .end(let trailers):
            self.requestEnd(trailers, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange = self.exchange, case .forwarding = exchange.phase {
            self.upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange = self.exchange, !exchange.isDone {
            // The app went away mid-exchange (Envoy's `DC`).
            exchange.record.responseFlags.insert(.downstreamConnectionTermination)
            self.finish(exchange, context: context, closeAfter: true)
        }
        self.releaseUpstream()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // The app sent FIN: nothing more will come. Finish the exchange in flight (its
            // response still goes out), then close; with nothing in flight, close now.
            self.draining = true
            if self.exchange == nil { context.close(promise: nil) }
            return
        }
        if event is DrainEvent {
            self.draining = true
            if self.exchange == nil { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.queueing {
            self.pendingRead = true
            return
        }
        if let exchange = self.exchange {
            switch exchange.phase {
            case .connecting:
                self.pendingRead = true
                return
            case .forwarding:
                if let upstream = self.upstream, !upstream.isWritable {
                    self.pendingRead = true
                    return
                }
            case .denied, .failed:
                break
            }
        }
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            self.runtime.logger.debug("downstream error: \(error)")
            context.close(promise: nil)
            return
        }
        // Bad bytes from the app: answer if no response has started, log it, close this
        // connection only.
        let tooLarge = parseError == .headerOverflow
        self.runtime.logger.info("bad HTTP request from \(self.connection.remoteText ?? "-"): \(parseError)")
        let exchange = self.exchange ?? self.makeLocalExchange()
        self.dropUpstream()
        if exchange.responseStarted {
            exchange.record.responseFlags.insert(.downstreamProtocolError)
            exchange.responseEnded = true
            exchange.requestEnded = true
            self.finish(exchange, context: context, closeAfter: true)
        } else {
            exchange.phase = .failed
            self.respondLocally(
                exchange,
                status: tooLarge ? .requestHeaderFieldsTooLarge : .badRequest,
                flag: .downstreamProtocolError,
                body: "",
                context: context,
                closeAfter: true
            )
        }
    }

    // MARK: request parts

    private func requestHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.deadline = .none
        let config = self.runtime.config
        self.limits = config.limits
        var record = AccessLogRecord()
        record.startTime = wallClockMillis()
        record.method = head.method.rawValue
        record.path = head.uri
        record.protocol = Self.protocolName(head.version)
        record.userAgent = head.headers.first(name: "user-agent")
        record.downstreamLocalAddress = self.connection.destinationText
        record.downstreamRemoteAddress = self.connection.remoteText

        if head.method == .CONNECT {
            // The target is the request's authority-form URI, not its Host.
            let requestID = head.headers.first(name: "x-request-id") ?? makeRequestID()
            record.requestId = requestID
            self.connectTunnel(head, record: record, config: config, context: context)
            return
        }
        let authority = RequestAuthority.raw(head)
        record.authority = authority
        let requestID = head.headers.first(name: "x-request-id") ?? makeRequestID()
        record.requestId = requestID

        guard let authority, let host = RequestAuthority.normalisedHost(authority),
            let destination = self.connection.destinationIP,
            let port = self.connection.destinationPort
        else {
            let decision = Decision.badRequest
            let exchange = HTTPExchange(phase: .failed, record: record, decision: decision, head: head)
            self.exchange = exchange
            exchange.record.upstreamCluster = nil
            self.respondLocally(exchange, status: .badRequest, flag: .downstreamProtocolError, body: "missing or invalid Host\n", context: context, closeAfter: true)
            return
        }

        let decision = config.decide(ConnectionFacts(kind: .http(host: host), destination: destination, port: port), role: self.runtime.role, host: host)
        record.upstreamCluster = decision.cluster
        record.routeName = decision.routeName

        switch decision.action {
        case .deny:
            let exchange = HTTPExchange(phase: .denied, record: record, decision: decision, head: head)
            self.exchange = exchange
            self.runtime.metrics.denied(.http)
            self.runtime.logger.info(
                "denied http \(host) to \(self.connection.destinationText)",
                metadata: ["reason": "\(decision.reason)"]
            )
            // A request that will send a body (or waits for 100-continue, or asks for an
            // upgrade, after which the codec stops) is answered at once and the connection
            // closed, so we never wait for bytes the client holds back.
            if Self.hasBody(head) || Self.requestedUpgrade(head) != nil {
                self.respondDenied(exchange, context: context, closeAfter: true)
            }
        case .forward(let target):
            var upstreamHead = head
            upstreamHead.version = .http1_1
            upstreamHead.headers.removeHopByHop()
            let upgrade = Self.requestedUpgrade(head)
            if let upgrade {
                // Upgrade is hop-by-hop, but a WebSocket handshake must reach the origin.
                upstreamHead.headers.add(name: "connection", value: "upgrade")
                upstreamHead.headers.add(name: "upgrade", value: upgrade)
            }
            if upstreamHead.headers.first(name: "x-request-id") == nil {
                upstreamHead.headers.add(name: "x-request-id", value: requestID)
            }
            if self.runtime.role == .gateway, let remoteIP = self.connection.remote?.ipAddress {
                let existing = upstreamHead.headers[canonicalForm: "x-forwarded-for"].joined(separator: ", ")
                upstreamHead.headers.replaceOrAdd(
                    name: "x-forwarded-for",
                    value: existing.isEmpty ? remoteIP : "\(existing), \(remoteIP)"
                )
            }
            // Envoy answers `Expect: 100-continue` itself rather than relaying it.
            if upstreamHead.headers.first(name: "expect")?.lowercased() == "100-continue" {
                upstreamHead.headers.remove(name: "expect")
                context.writeAndFlush(
                    Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                    promise: nil
                )
            }
            record.xForwardedFor = upstreamHead.headers.first(name: "x-forwarded-for")
            let exchange = HTTPExchange(phase: .forwarding, record: record, decision: decision, head: head)
            exchange.upgrade = upgrade
            self.exchange = exchange
            if let upstream = self.reusableUpstream(for: target) {
                self.upstream = upstream
                self.attach(exchange, to: upstream)
                upstream.busy = true
                self.requestSent(exchange, context: context)
                upstream.send(.head(upstreamHead), flush: false)
            } else {
                exchange.phase = .connecting([.head(upstreamHead)])
                self.connect(exchange, target: target, config: config, context: context)
            }
        }
    }

    private func requestBody(_ body: ByteBuffer) {
        guard let exchange = self.exchange else { return }
        exchange.record.bytesReceived &+= UInt64(body.readableBytes)
        switch exchange.phase {
        case .connecting(var parts):
            parts.append(.body(.byteBuffer(body)))
            exchange.phase = .connecting(parts)
        case .forwarding:
            self.upstream?.send(.body(.byteBuffer(body)), flush: false)
        case .denied, .failed:
            break
        }
    }

    private func requestEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        guard let exchange = self.exchange else { return }
        exchange.requestEnded = true
        switch exchange.phase {
        case .connecting(var parts):
            parts.append(.end(trailers))
            exchange.phase = .connecting(parts)
        case .forwarding:
            self.upstream?.send(.end(trailers), flush: true)
        case .denied:
            if !exchange.responseStarted {
                self.respondDenied(exchange, context: context, closeAfter: !exchange.keepAlive)
            } else if exchange.isDone {
                self.finish(exchange, context: context, closeAfter: !exchange.keepAlive)
            }
        case .failed:
            if exchange.isDone { self.finish(exchange, context: context, closeAfter: !exchange.keepAlive) }
        }
    }

    // MARK: upstream connection

    private func connect(
        _ exchange: HTTPExchange,
        target: UpstreamTarget,
        config: ActiveConfig,
        context: ChannelHandlerContext
    ) {
        let loop = context.eventLoop
        let future = self.runtime.connector.connect(
            target: target,
            gateway: config.gateway,
            eventLoop: loop,
            connectTimeout: .init(config.limits.connectTimeout),
            initializer: { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Bytes an origin sends right behind a 101 belong to the upgraded stream.
                    // No outbound header validation: every header forwarded was parsed (and
                    // so validated) by the downstream decoder, and re-scanning every header
                    // of every request cost ~3% of the sidecar's CPU in bench/profile.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        enableOutboundHeaderValidation: false
                    )
                }
            }
        )
        future.assumeIsolated().whenComplete { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let error):
                let failure = error as? UpstreamError ?? .connectFailed("\(error)")
                self.runtime.logger.warning(
                    "upstream connect failed",
                    metadata: ["authority": "\(exchange.record.authority ?? "-")", "error": "\(failure)"]
                )
                exchange.phase = .failed
                exchange.record.upstreamTransportFailureReason = failure.transportFailureReason
                let body: String
                switch failure {
                case .resolution: body = "DNS resolution failure\n"
                case .noHealthyUpstream: body = "no healthy upstream\n"
                default: body = "upstream connect error or disconnect/reset before headers. reset reason: connection failure\n"
                }
                self.respondLocally(
                    exchange,
                    status: .serviceUnavailable,
                    flag: failure.responseFlag,
                    body: body,
                    context: context,
                    closeAfter: !exchange.requestEnded
                )
            case .success(let connection):
                let handler = UpstreamHTTPHandler(target: target, remote: connection.remote)
                do {
                    try connection.channel.pipeline.syncOperations.addHandler(handler)
                } catch {
                    connection.channel.close(promise: nil)
                    context.close(promise: nil)
                    return
                }
                self.upstream = handler
                handler.busy = true
                self.attach(exchange, to: handler)
                guard case .connecting(let parts) = exchange.phase else { return }
                exchange.phase = .forwarding
                self.requestSent(exchange, context: context)
                for part in parts { handler.send(part, flush: false) }
                handler.flush()
                GlueHandler.startReading(connection.channel)
                if self.pendingRead {
                    self.pendingRead = false
                    context.read()
                }
            }
        }
    }

    /// Starts the clock for `upstream_service_time` and Envoy's route timeout.
    private func requestSent(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        exchange.upstreamRequestSent = now
        let timeout = TimeAmount(self.limits.upstreamTimeout)
        self.setDeadline(.response(now + timeout, timeout), context: context)
    }

    private func upstreamTimedOut(_ exchange: HTTPExchange, after timeout: TimeAmount) {
        guard self.exchange === exchange, !exchange.responseStarted, let context = self.context else { return }
        self.runtime.logger.warning(
            "upstream request timeout",
            metadata: ["authority": "\(exchange.record.authority ?? "-")", "after_ms": "\(timeout.nanoseconds / 1_000_000)"]
        )
        exchange.phase = .failed
        self.dropUpstream()
        self.respondLocally(
            exchange,
            status: .gatewayTimeout,
            flag: .upstreamRequestTimeout,
            body: "upstream request timeout\n",
            context: context,
            closeAfter: !exchange.requestEnded
        )
    }

    /// Turns an upgraded exchange into a raw tunnel: the HTTP codecs leave both pipelines
    /// (each decoder hands on what it read past the 101 / the request head) and the two
    /// channels are glued like a TCP connection. The exchange is logged when the tunnel closes.
    private func switchToTunnel(_ exchange: HTTPExchange, upstream: UpstreamHTTPHandler) {
        guard let upstreamChannel = upstream.channel else {
            self.context?.close(promise: nil)
            upstream.close()
            return
        }
        self.upstream = nil
        upstream.downstream = nil
        self.glueTunnel(exchange, upstreamChannel: upstreamChannel, upstreamHTTP: upstream)
    }

    /// Glues the downstream to `upstreamChannel` as raw bytes, after taking the HTTP codecs
    /// out of both pipelines (`upstreamHTTP` is nil for a raw upstream, as after CONNECT).
    private func glueTunnel(_ exchange: HTTPExchange, upstreamChannel: any Channel, upstreamHTTP: UpstreamHTTPHandler?) {
        guard let context = self.context, context.channel.isActive, upstreamChannel.isActive else {
            self.context?.close(promise: nil)
            upstreamChannel.close(promise: nil)
            return
        }
        self.exchange = nil
        self.deadline = .none
        let downstream = context.channel
        let downSync = downstream.pipeline.syncOperations
        let upSync = upstreamChannel.pipeline.syncOperations
        let runtime = self.runtime
        do {
            // Order matters: the glue goes in first, then every handler that expects HTTP
            // parts on writes leaves before the decoders do, because removing a decoder hands
            // its left-over bytes to the glue at once, which writes them raw to the other side.
            try GlueHandler.join(downstream: downstream, upstream: upstreamChannel) { counters in
                exchange.record.bytesReceived &+= counters.downstreamBytes
                exchange.record.bytesSent &+= counters.upstreamBytes
                exchange.record.duration = exchange.start.millisecondsElapsed
                runtime.completedRequest(exchange.record)
            }
            if let upstreamHTTP { upSync.removeHandler(upstreamHTTP, promise: nil) }
            if let validator = try? upSync.handler(type: NIOHTTPRequestHeadersValidator.self) {
                upSync.removeHandler(validator, promise: nil)
            }
            if let encoder = try? upSync.handler(type: HTTPRequestEncoder.self) { upSync.removeHandler(encoder, promise: nil) }
            downSync.removeHandler(context: context, promise: nil)
            if let pipelining = try? downSync.handler(type: HTTPServerPipelineHandler.self) {
                downSync.removeHandler(pipelining, promise: nil)
            }
            if let validator = try? downSync.handler(type: NIOHTTPResponseHeadersValidator.self) {
                downSync.removeHandler(validator, promise: nil)
            }
            if let encoder = try? downSync.handler(type: HTTPResponseEncoder.self) { downSync.removeHandler(encoder, promise: nil) }
            if let decoder = try? upSync.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self) {
                upSync.removeHandler(decoder, promise: nil)
            }
            if let decoder = try? downSync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                downSync.removeHandler(decoder, promise: nil)
            }
        } catch {
            downstream.close(promise: nil)
            upstreamChannel.close(promise: nil)
            return
        }
        downstream.read()
        // A raw upstream (CONNECT) was dialled with autoRead off, like every upstream.
        GlueHandler.startReading(upstreamChannel)
        upstreamChannel.read()
    }

    /// `CONNECT host:port` from the app: decided like the gateway's CONNECT listener decides a
    /// tunnel (the registry by name or address, on any protocol of that port), then the sidecar
    /// itself dials the target (directly or through the egress gateway), answers 200 and glues
    /// the tunnel. Unregistered under REGISTRY_ONLY: 403, as Envoy answers a CONNECT it has no
    /// route for.
    private func connectTunnel(_ head: HTTPRequestHead, record: AccessLogRecord, config: ActiveConfig, context: ChannelHandlerContext) {
        var record = record
        record.authority = head.uri
        guard let (host, port) = ConnectServerHandler.splitAuthority(head.uri) else {
            let exchange = HTTPExchange(phase: .failed, record: record, decision: .badRequest, head: head)
            self.exchange = exchange
            self.respondLocally(exchange, status: .badRequest, flag: .downstreamProtocolError, body: "", context: context, closeAfter: true)
            return
        }
        let decision = config.policy.decide(tunnelTo: HostPort(host: host, port: port))
        record.upstreamCluster = decision.cluster
        record.routeName = decision.routeName
        let exchange = HTTPExchange(phase: .failed, record: record, decision: decision, head: head)
        self.exchange = exchange
        guard case .forward(let target) = decision.action else {
            self.runtime.metrics.denied(.connect)
            self.runtime.logger.info("denied CONNECT \(head.uri) from the app", metadata: ["reason": "\(decision.reason)"])
            self.respondLocally(exchange, status: .forbidden, flag: .noRouteFound, body: "", context: context, closeAfter: true)
            return
        }
        exchange.phase = .connecting([])
        let loop = context.eventLoop
        self.runtime.connector.connect(
            target: target,
            gateway: config.gateway,
            eventLoop: loop,
            connectTimeout: .init(config.limits.connectTimeout),
            initializer: { _ in loop.makeSucceededVoidFuture() }
        ).assumeIsolated().whenComplete { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let error):
                let failure = error as? UpstreamError ?? .connectFailed("\(error)")
                exchange.phase = .failed
                exchange.record.upstreamTransportFailureReason = failure.transportFailureReason
                self.respondLocally(exchange, status: .serviceUnavailable, flag: failure.responseFlag, body: "", context: context, closeAfter: true)
            case .success(let connection):
                exchange.record.responseCode = 200
                exchange.record.upstreamHost = connection.remote.logDescription
                exchange.record.upstreamLocalAddress = connection.channel.localAddress?.logDescription
                exchange.responseStarted = true
                var headers = HTTPHeaders()
                headers.add(name: "date", value: HTTPDate.now())
                headers.add(name: "server", value: "sluice")
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: exchange.requestVersion, status: .ok, headers: headers))), promise: nil)
                self.writeEnd(nil, context: context)
                // After this callback: the 200 is written through the codec before it leaves.
                let handler = NIOLoopBound(self, eventLoop: loop)
                let tunnelExchange = NIOLoopBound(exchange, eventLoop: loop)
                let channel = connection.channel
                loop.execute {
                    handler.value.glueTunnel(tunnelExchange.value, upstreamChannel: channel, upstreamHTTP: nil)
                }
            }
        }
    }

    /// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: X`).
    static func requestedUpgrade(_ head: HTTPRequestHead) -> String? {
        guard head.method != .CONNECT, let upgrade = head.headers.first(name: "upgrade"),
            head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" })
        else { return nil }
        return upgrade
    }

    /// This connection's own upstream if it goes to `target` and is idle, else an idle one
    /// from the event loop's pool; the previous upstream goes back to the pool.
    private func reusableUpstream(for target: UpstreamTarget) -> UpstreamHTTPHandler? {
        if let upstream = self.upstream, upstream.target == target, upstream.reusable, !upstream.busy,
            upstream.channel?.isActive == true
        {
            return upstream
        }
        self.releaseUpstream()
        return UpstreamPool.current.take(target)
    }

    private func attach(_ exchange: HTTPExchange, to upstream: UpstreamHTTPHandler) {
        upstream.downstream = self
        exchange.record.upstreamHost = upstream.remote.logDescription
        exchange.record.upstreamLocalAddress = upstream.localAddress?.logDescription
    }

    /// Lets go of the current upstream connection, keeping it in the pool when it is idle
    /// and reusable.
    private func releaseUpstream() {
        guard let upstream = self.upstream else { return }
        self.upstream = nil
        upstream.downstream = nil
        UpstreamPool.current.put(upstream)
    }

    /// Lets go of the current upstream connection (closing it).
    private func dropUpstream() {
        if let upstream = self.upstream {
            upstream.downstream = nil
            upstream.close()
            self.upstream = nil
        }
    }

    // MARK: upstream events (called by UpstreamHTTPHandler on this event loop)

    func upstreamResponse(_ part: HTTPClientResponsePart, from upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream, let exchange = self.exchange, let context = self.context else { return }
        switch part {
        case .head(var head):
            self.deadline = .none
            exchange.responseStarted = true
            exchange.record.responseCode = Int(head.status.code)
            if let sent = exchange.upstreamRequestSent {
                let ms = sent.millisecondsElapsed
                exchange.record.upstreamServiceTime = ms
                head.headers.replaceOrAdd(name: "x-envoy-upstream-service-time", value: String(ms))
            }
            if !head.isKeepAlive { upstream.reusable = false }
            head.headers.removeHopByHop()
            head.version = exchange.requestVersion
            if head.status == .switchingProtocols, let upgrade = exchange.upgrade {
                // The origin accepted the upgrade: pass the 101 on; at its end both sides become a tunnel.
                exchange.switching = true
                upstream.reusable = false
                head.headers.replaceOrAdd(name: "connection", value: "upgrade")
                head.headers.replaceOrAdd(name: "upgrade", value: head.headers.first(name: "upgrade") ?? upgrade)
            }
            if !exchange.keepAlive || self.draining { head.headers.replaceOrAdd(name: "connection", value: "close") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: head.status, headers: head.headers))), promise: nil)
        case .body(let body):
            exchange.record.bytesSent &+= UInt64(body.readableBytes)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers):
            exchange.responseEnded = true
            upstream.busy = false
            self.writeEnd(trailers, context: context)
            if exchange.switching {
                // After this callback returns: the codecs are mid-decode now.
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let tunnelExchange = NIOLoopBound(exchange, eventLoop: context.eventLoop)
                let tunnelUpstream = NIOLoopBound(upstream, eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    handler.value.switchToTunnel(tunnelExchange.value, upstream: tunnelUpstream.value)
                }
                return
            }
            if !upstream.reusable { self.dropUpstream() }
            if exchange.isDone {
                self.finish(exchange, context: context, closeAfter: !exchange.keepAlive)
            }
        }
    }

    func upstreamReadComplete(from upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream else { return }
        self.context?.flush()
    }

    func upstreamBecameWritable(_ upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream, self.pendingRead, let context = self.context else { return }
        self.pendingRead = false
        context.read()
    }

    func upstreamClosed(_ upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream else { return }
        self.upstream = nil
        upstream.downstream = nil
        guard let exchange = self.exchange, !exchange.responseEnded, let context = self.context else { return }
        guard case .forwarding = exchange.phase else { return }
        exchange.record.responseFlags.insert(.upstreamConnectionTermination)
        if exchange.responseStarted {
            // Mid-body: the response cannot be completed; the app must see a truncated transfer.
            exchange.responseEnded = true
            self.finish(exchange, context: context, closeAfter: true)
        } else {
            exchange.phase = .failed
            exchange.record.upstreamTransportFailureReason = "connection_termination"
            self.respondLocally(
                exchange,
                status: .serviceUnavailable,
                flag: .upstreamConnectionTermination,
                body: "upstream connect error or disconnect/reset before headers. reset reason: connection termination\n",
                context: context,
                closeAfter: !exchange.requestEnded
            )
        }
    }

    // MARK: local answers

    private func respondDenied(_ exchange: HTTPExchange, context: ChannelHandlerContext, closeAfter: Bool) {
        switch self.runtime.role {
        case .sidecar:
            // Envoy's BlackHoleCluster answer under REGISTRY_ONLY.
            self.respondLocally(exchange, status: .badGateway, flag: nil, body: "", context: context, closeAfter: closeAfter)
        case .gateway:
            // Envoy's gateway has no route for an unregistered host: 404 with NR.
            self.respondLocally(exchange, status: .notFound, flag: .noRouteFound, body: "", context: context, closeAfter: closeAfter)
        }
    }

    /// Sends a complete response of our own and finishes the exchange when the request has ended.
    private func respondLocally(
        _ exchange: HTTPExchange,
        status: HTTPResponseStatus,
        flag: ResponseFlags?,
        body: String,
        context: ChannelHandlerContext,
        closeAfter: Bool = false
    ) {
        if let flag { exchange.record.responseFlags.insert(flag) }
        exchange.record.responseCode = Int(status.code)
        exchange.responseStarted = true
        exchange.responseEnded = true
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: String(body.utf8.count))
        if !body.isEmpty { headers.add(name: "content-type", value: "text/plain") }
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "server", value: "sluice")
        let close = closeAfter || !exchange.keepAlive
        if close { headers.add(name: "connection", value: "close") }
        if exchange.withoutRequest {
            self.writeBelowCodec(status: status, headers: headers, body: body, context: context)
            exchange.requestEnded = true
            self.finish(exchange, context: context, closeAfter: true)
            return
        }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: exchange.requestVersion, status: status, headers: headers))), promise: nil)
        if !body.isEmpty && !exchange.isHEAD {
            exchange.record.bytesSent &+= UInt64(body.utf8.count)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        self.writeEnd(nil, context: context)
        if close {
            exchange.requestEnded = true
        }
        if exchange.isDone {
            self.finish(exchange, context: context, closeAfter: close)
        }
    }

    /// Writes the log line and readies the connection for the next request (or closes it).
    private func finish(_ exchange: HTTPExchange, context: ChannelHandlerContext, closeAfter: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        exchange.record.duration = exchange.start.millisecondsElapsed
        self.runtime.completedRequest(exchange.record)
        if (closeAfter || self.draining) && !self.closing {
            self.closing = true
            // Close only after the response's last bytes are out: NIO fails writes still
            // pending at close, which would cut the body short.
            let written = self.lastResponseEnd ?? context.eventLoop.makeSucceededVoidFuture()
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else if self.queueing {
            self.replayQueued(context: context)
        } else {
            let idle = TimeAmount(self.limits.idleTimeout)
            self.setDeadline(.idle(.now() + idle), context: context)
            if self.pendingRead {
                self.pendingRead = false
                context.read()
            }
        }
    }

    private func writeEnd(_ trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(.end(trailers)), promise: promise)
        self.lastResponseEnd = promise.futureResult
    }

    /// Writes a whole response as bytes from the encoder's position, i.e. past the HTTP codec.
    private func writeBelowCodec(status: HTTPResponseStatus, headers: HTTPHeaders, body: String, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 128 + body.utf8.count)
        buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        for (name, value) in headers { buffer.writeString("\(name): \(value)\r\n") }
        buffer.writeString("\r\n")
        buffer.writeString(body)
        let promise = context.eventLoop.makePromise(of: Void.self)
        if let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            encoder.writeAndFlush(NIOAny(buffer), promise: promise)
        } else {
            promise.succeed(())
        }
        self.lastResponseEnd = promise.futureResult
    }

    /// Hands the queued pipelined parts on now that the exchange in flight is done; a head
    /// behind the next one queues again.
    private func replayQueued(context: ChannelHandlerContext) {
        let parts = self.queued
        self.queued.removeAll()
        self.queueing = false
        for part in parts {
            if self.queueing {
                self.queued.append(part)
            } else if case .head = part, self.exchange != nil {
                self.queueing = true
                self.queued.append(part)
            } else {
                self.handle(part, context: context)
            }
        }
        if !self.queueing, self.pendingRead, self.exchange == nil || !self.isReadHeld {
            self.pendingRead = false
            context.read()
        }
    }

    /// True while the exchange in flight holds reads (connecting, or upstream not writable).
    private var isReadHeld: Bool {
        guard let exchange = self.exchange else { return false }
        switch exchange.phase {
        case .connecting: return true
        case .forwarding: return !(self.upstream?.isWritable ?? true)
        case .denied, .failed: return false
        }
    }

    /// An exchange for an answer we give before any request head was read (400, 408, 431).
    private func makeLocalExchange() -> HTTPExchange {
        var record = AccessLogRecord()
        record.startTime = wallClockMillis()
        record.downstreamLocalAddress = self.connection.destinationText
        record.downstreamRemoteAddress = self.connection.remoteText
        let exchange = HTTPExchange(
            phase: .failed,
            record: record,
            decision: .badRequest,
            head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "")
        )
        exchange.withoutRequest = true
        self.exchange = exchange
        return exchange
    }

    // MARK: waiting for the next request

    private func setDeadline(_ deadline: ConnectionDeadline, context: ChannelHandlerContext) {
        self.deadline = deadline
        guard let at = deadline.instant else { return }
        if let firesAt = self.timerFiresAt, firesAt <= at { return }
        self.armTimer(at: at, context: context)
    }

    private func armTimer(at: NIODeadline, context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timerFiresAt = at
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: at) {
            handler.value.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        self.timerFiresAt = nil
        guard let context = self.context, let at = self.deadline.instant else { return }
        if NIODeadline.now() < at {
            self.armTimer(at: at, context: context)
            return
        }
        let expired = self.deadline
        self.deadline = .none
        switch expired {
        case .none:
            break
        case .idle:
            // Envoy's idle_timeout: a keep-alive connection with nothing in flight closes quietly.
            if self.exchange == nil { context.close(promise: nil) }
        case .firstHead:
            guard self.exchange == nil else { return }
            self.runtime.logger.info("request head not received in time from \(self.connection.remoteText ?? "-")")
            let exchange = self.makeLocalExchange()
            self.respondLocally(exchange, status: .requestTimeout, flag: nil, body: "", context: context, closeAfter: true)
        case .response(_, let timeout):
            if let exchange = self.exchange { self.upstreamTimedOut(exchange, after: timeout) }
        }
    }

    /// `HTTP/1.1` and `HTTP/1.0` without building a string per request.
    static func protocolName(_ version: HTTPVersion) -> String {
        switch (version.major, version.minor) {
        case (1, 1): return "HTTP/1.1"
        case (1, 0): return "HTTP/1.0"
        default: return "HTTP/\(version.major).\(version.minor)"
        }
    }

    static func hasBody(_ head: HTTPRequestHead) -> Bool {
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" { return true }
        if head.headers.contains(name: "transfer-encoding") { return true }
        if let length = head.headers.first(name: "content-length"), let n = Int(length), n > 0 { return true }
        return false
    }
}

extension Decision {
    /// A request we could not even decide (no usable Host): answered 400, logged as such.
    static var badRequest: Decision {
        Decision(action: .deny, cluster: "-", routeName: "-", match: nil, reason: "request has no valid Host")
    }
}

/// What a connection waits for, with its deadline.
enum ConnectionDeadline {
    case none
    /// The first request head (`headerReadTimeout`: 408 when it passes).
    case firstHead(NIODeadline)
    /// The next request on a kept-alive connection (`idleTimeout`: closed when it passes).
    case idle(NIODeadline)
    /// The upstream's response head (`upstreamTimeout`: 504 UT when it passes).
    case response(NIODeadline, TimeAmount)

    var instant: NIODeadline? {
        switch self {
        case .none: return nil
        case .firstHead(let at), .idle(let at), .response(let at, _): return at
        }
    }
}
