import Logging
import NIOCore
import SluiceCore

/// Proxies HTTP/1.x requests on one downstream connection, deciding **each request** on its
/// own Host, so a keep-alive connection cannot switch to an unregistered host.
///
/// Bytes are framed with `HTTP1Framer` (strict parsing, the smuggling shapes rejected) and
/// forwarded as read: the head is rewritten field by field from the bytes (hop-by-hop fields
/// out, the proxy's fields in), bodies go on as the same buffers, chunk framing included. No
/// request or response is decoded into `HTTPHeaders` and encoded again: that decode/encode
/// was most of the CPU a keep-alive request cost (Benchmarks/scripts/profile).
///
/// Requests are handled one at a time: bytes of a pipelined request that arrive while one is
/// in flight stay buffered (and reading is paused) until the response in flight has ended.
/// Bodies stream in both directions with backpressure: a downstream `read()` is held while
/// the upstream is not writable, and the upstream's while the downstream is not. The
/// upstream connection is kept for the next request when it goes to the same target.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private var context: ChannelHandlerContext?
    private var exchange: HTTPExchange?
    private var upstream: UpstreamHTTPHandler?
    private var framer: HTTP1Framer
    /// Bytes read but not framed yet: a partial head, or a pipelined request waiting its turn.
    private var inbound: ByteBuffer?
    /// A request head was framed and its end not yet.
    private var requestOpen = false
    private var processing = false
    private var pendingRead = false
    /// Response bytes written to the app (or held in `responseHead`) and not flushed yet.
    private var unflushed = false
    /// A kept-alive response's last bytes are flushed at the end of the loop tick.
    private let deferredFlush = DeferredFlush()
    /// A response head not written yet: a small body read with it is appended, so head and
    /// body leave in one write rather than two (one fewer pipeline pass and iovec).
    private var responseHead: ByteBuffer?
    private var closing = false
    /// Draining: close once the exchange in flight is done.
    private var draining = false
    /// Which configuration the last request was handled under (its token, not the config: an
    /// idle connection must not keep a replaced registry alive), and its limits with the
    /// timeouts already converted: done again only when a reload replaced the configuration.
    private var configIdentity: ConfigIdentity?
    private var limits = ConnectionLimits(Limits())
    /// What the connection is waiting for, and until when (header read, idle, response).
    private var deadline = ConnectionDeadline.none
    /// The one timer of this connection and when it fires. It is re-armed lazily: moving a
    /// deadline later costs nothing per request; the timer, when it fires early, re-arms.
    /// Deadlines are read from the event loop's clock (`EventLoop.now`), so a test on an
    /// `EmbeddedEventLoop` moves them with `advanceTime` instead of sleeping.
    private var timer: Scheduled<Void>?
    private var timerFiresAt: NIODeadline?
    /// The last request's authority and decision: a keep-alive connection asks for the same
    /// host again and again, and the decision is a pure function of the host, the original
    /// destination (fixed per connection) and the configuration.
    private var lastDecision: CachedDecision?
    /// The metric series the last request was counted in.
    private var seriesMemo = RequestSeriesMemo()

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
        self.framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
    }

    /// The channel's writability as of its last `channelWritabilityChanged`: the upstream
    /// asks on every read, and `channel.isWritable` costs a pipeline and channel lookup.
    private var channelWritable = true
    var isWritable: Bool { self.context != nil && self.channelWritable }
    /// The channel's allocator, looked up once rather than per request head.
    private var allocator = ByteBufferAllocator()

    // MARK: downstream events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.deferredFlush.attach(context)
        self.channelWritable = context.channel.isWritable
        self.allocator = context.channel.allocator
        self.adopt(self.runtime.config)
        self.setDeadline(.firstHead(context.eventLoop.now + self.limits.headerRead), context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.context = nil
        self.deferredFlush.attach(nil)
        self.releaseUpstream()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.closing { return }
        // Taken out, appended to and put back: a non-inlined mutating call on a class property
        // makes the compiler check exclusivity at run time on every access to that property.
        var inbound = self.inbound.take()
        inbound.append(self.unwrapInboundIn(data))
        self.inbound = inbound
        self.processInbound(context: context)
    }

    /// Frames what is buffered, one request at a time: stops at the end of a request whose
    /// response is still to come (what follows is a pipelined request, or a tunnel's bytes).
    private func processInbound(context: ChannelHandlerContext) {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        // Until the framer needs more: a head that used up every byte read may still be
        // followed by its end (no body), which costs no byte.
        loop: while !self.closing, var buffer = self.inbound {
            if !self.requestOpen && self.exchange != nil { break }
            self.inbound = nil
            let event: HTTP1Framer.Event
            do {
                // Framed on a copy put back after (both ways out), for the reason above.
                var framer = self.framer
                defer { self.framer = framer }
                event = try framer.next(&buffer)
            } catch {
                self.inbound = nil
                self.badRequest(error, context: context)
                return
            }
            self.inbound = buffer
            switch consume event {
            case .needMore:
                break loop
            case .head(let head):
                self.requestOpen = true
                self.requestHead(head, context: context)
            case .body(let body):
                self.requestBody(body)
            case .end:
                self.requestOpen = false
                self.requestEnd(context: context)
            }
        }
        if let buffer = self.inbound, buffer.readableBytes == 0 { self.inbound = nil }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange = self.exchange, case .forwarding = exchange.phase {
            self.upstream?.flush()
        }
        context.fireChannelReadComplete()
        // The next read asked for here, as read(context:) would: auto-read then finds one
        // pending and skips its own pass of read() from the pipeline's tail (~0.2k
        // instructions a read net; the read itself still goes to the head).
        self.read(context: context)
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
            if self.exchange == nil { self.closeDownstream(context) }
            return
        }
        if event is DrainEvent {
            self.draining = true
            if self.exchange == nil { self.closeDownstream(context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.channelWritable = context.channel.isWritable
        if self.channelWritable { self.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.isReadHeld {
            self.pendingRead = true
            return
        }
        context.read()
    }

    /// True while reading must wait: a pipelined request is buffered behind the one in
    /// flight, the upstream is being dialled, or it cannot take more bytes.
    private var isReadHeld: Bool {
        guard let exchange = self.exchange else { return false }
        if !self.requestOpen, let inbound = self.inbound, inbound.readableBytes > 0 { return true }
        switch exchange.phase {
        case .connecting: return true
        case .forwarding: return !(self.upstream?.isWritable ?? true)
        case .denied, .failed: return false
        }
    }

    private func resumeReadingIfHeld(context: ChannelHandlerContext) {
        if self.pendingRead, !self.isReadHeld {
            self.pendingRead = false
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.runtime.logger.debug("downstream error: \(error)")
        self.closeDownstream(context)
    }

    /// Bad bytes from the app: answer if no response has started (431 for an oversized head,
    /// 400 otherwise), log it, close this connection only.
    private func badRequest(_ error: HTTP1ParseError, context: ChannelHandlerContext) {
        let tooLarge = error == .headTooLarge || error == .tooManyFields
        self.runtime.logger.info("bad HTTP request from \(self.connection.remoteText ?? "-"): \(error)")
        let exchange = self.exchange ?? self.makeLocalExchange()
        self.dropUpstream()
        exchange.requestEnded = true
        if exchange.responseStarted {
            exchange.record.responseFlags.insert(.downstreamProtocolError)
            exchange.responseEnded = true
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

    /// Takes on the configuration in force (on the first request and after a reload).
    private func adopt(_ config: ActiveConfig) {
        self.configIdentity = config.identity
        self.limits = ConnectionLimits(config.limits)
        self.framer.limits = self.limits.framer
    }

    // MARK: request parts

    private func requestHead(_ head: HTTP1Head, context: ChannelHandlerContext) {
        self.deadline = .none
        let config = self.runtime.config
        if config.identity !== self.configIdentity { self.adopt(config) }
        let target = head.string(head.target)
        var record = AccessLogRecord()
        self.connection.start(&record, at: wallClockMillis())
        record.method = head.methodString
        record.path = target
        record.protocol = head.versionMinor == 0 ? "HTTP/1.0" : "HTTP/1.1"
        record.userAgent = head.userAgent.map(head.string)
        let incomingID = head.hasRequestID ? head.firstValue("x-request-id").map(head.string) : nil
        let generatedID = incomingID == nil ? makeRequestID() : nil
        record.requestID = incomingID.map { .text($0) } ?? generatedID.map { .generated($0) }

        if head.knownMethod == .connect {
            // The target is the request's authority-form URI, not its Host.
            self.connectTunnel(head, target: target, record: record, config: config, context: context)
            return
        }
        let authority = RequestAuthority.raw(target: target, host: head.host.map(head.string))
        record.authority = authority

        guard let authority, let destination = self.connection.destinationIP,
            let port = self.connection.destinationPort,
            let decided = self.decide(authority, destination: destination, port: port, config: config)
        else {
            let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
            self.exchange = exchange
            self.respondLocally(exchange, status: .badRequest, flag: .downstreamProtocolError, body: "missing or invalid Host\n", context: context, closeAfter: true)
            return
        }
        // Read through the cached object: copying the Decision out retains each of its strings.
        record.upstreamCluster = decided.decision.cluster
        record.routeName = decided.decision.routeName
        if decided.decision.audited {
            record.istioPolicyStatus = Decision.auditDeniedStatus
            self.runtime.metrics.auditDenied(.http, host: decided.host)
        }
        let upgrade = Self.requestedUpgrade(head)

        switch decided.decision.action {
        case .deny where decided.decision.denial == .close:
            // A port that only opaque or TLS entries declare has no HTTP listener to answer:
            // the request meets the black hole like any unregistered TCP, closed without a byte.
            self.runtime.metrics.denied(.tcp)
            self.runtime.logger.info(
                "denied http \(decided.host) to \(self.connection.destinationText) (closed: no HTTP on this port)",
                metadata: ["reason": "\(decided.decision.reason)"]
            )
            record.responseCode = 0
            record.responseFlags.insert(.noRouteFound)
            record.duration = self.connection.start.millisecondsElapsed
            self.runtime.metrics.tcpOpened(cluster: decided.decision.cluster)
            self.runtime.completedConnection(record)
            self.closing = true
            self.inbound = nil
            context.close(promise: nil)
        case .deny:
            let exchange = HTTPExchange(phase: .denied, taking: &record, head: head)
            self.exchange = exchange
            self.runtime.metrics.denied(.http)
            self.runtime.logger.info(
                "denied http \(decided.host) to \(self.connection.destinationText)",
                metadata: ["reason": "\(decided.decision.reason)"]
            )
            // A request that will send a body (or waits for 100-continue, or asks for an
            // upgrade, after which it may send anything) is answered at once and the
            // connection closed, so we never wait for bytes the client holds back.
            if Self.hasBody(head) || upgrade != nil {
                self.respondDenied(exchange, context: context, closeAfter: true)
            }
        case .forward(let upstreamTarget):
            var edits = HTTP1Rewrite.RequestEdits(upgrade: upgrade, requestID: generatedID)
            if self.runtime.role == .gateway, let remoteIP = self.connection.remote?.ipAddress {
                let existing = Self.forwardedFor(head)
                edits.forwardedFor = existing.isEmpty ? remoteIP : "\(existing), \(remoteIP)"
            }
            if head.expectContinue {
                // Envoy answers `Expect: 100-continue` itself rather than relaying it.
                edits.dropExpect = true
                var interim = self.allocator.buffer(capacity: 32)
                interim.writeStaticString(head.versionMinor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
                context.writeAndFlush(self.wrapOutboundOut(interim), promise: nil)
            }
            record.xForwardedFor = edits.forwardedFor ?? head.forwardedFor.map(head.string)
            var bytes = self.allocator.buffer(capacity: HTTP1Rewrite.upstreamRequestBound(head, edits: edits))
            HTTP1Rewrite.writeUpstreamRequest(head, edits: edits, to: &bytes)
            let exchange = HTTPExchange(phase: .forwarding, taking: &record, head: head)
            exchange.upgrade = upgrade
            self.exchange = exchange
            if let upstream = self.reusableUpstream(for: upstreamTarget) {
                self.upstream = upstream
                self.attach(exchange, to: upstream)
                self.requestSent(exchange, context: context)
                upstream.send(bytes, flush: false)
            } else {
                exchange.phase = .connecting([bytes])
                self.connect(exchange, target: upstreamTarget, config: config, context: context)
            }
        }
    }

    /// The normalised host and the decision for `authority`, reusing the previous request's
    /// when the authority and the configuration are the same. Nil when it names no valid host.
    private func decide(_ authority: String, destination: IPAddress, port: Int, config: ActiveConfig) -> CachedDecision? {
        if let last = self.lastDecision, last.config === config.identity, last.authority == authority {
            return last
        }
        guard let parsed = Authority(authority) else { return nil }
        let decision = config.policy.decide(ConnectionFacts(kind: .http(parsed), destination: destination, port: port))
        let decided = CachedDecision(authority: authority, host: parsed.host, config: config.identity, decision: decision)
        self.lastDecision = decided
        return decided
    }

    private func requestBody(_ body: ByteBuffer) {
        guard let exchange = self.exchange else { return }
        exchange.record.bytesReceived &+= UInt64(body.readableBytes)
        switch exchange.phase {
        case .connecting(var parts):
            parts.append(body)
            exchange.phase = .connecting(parts)
        case .forwarding:
            self.upstream?.send(body, flush: false)
        case .denied, .failed:
            break
        }
    }

    private func requestEnd(context: ChannelHandlerContext) {
        guard let exchange = self.exchange else { return }
        exchange.requestEnded = true
        switch exchange.phase {
        case .connecting:
            break
        case .forwarding:
            // The request's last bytes: their flush waits for the end of this loop tick.
            self.upstream?.deferFlush()
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
        let responseLimits = self.limits.framer
        self.runtime.connector.connect(
            target: target,
            gateway: config.gateway,
            eventLoop: context.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let failure):
                self.runtime.logger.warning(
                    "upstream connect failed",
                    metadata: ["authority": "\(exchange.record.authority ?? "-")", "error": "\(failure)"]
                )
                exchange.phase = .failed
                exchange.record.upstreamTransportFailureReason = failure.transportFailureReason
                let body = failure.localReplyBody
                self.respondLocally(
                    exchange,
                    status: .serviceUnavailable,
                    flag: failure.responseFlag,
                    body: body,
                    context: context,
                    closeAfter: !exchange.requestEnded
                )
            case .success(let connection):
                let handler = UpstreamHTTPHandler(target: target, remote: connection.remote, limits: responseLimits)
                do {
                    try connection.channel.pipeline.syncOperations.addHandler(handler)
                } catch {
                    connection.channel.close(promise: nil)
                    self.closeDownstream(context)
                    return
                }
                self.upstream = handler
                self.attach(exchange, to: handler)
                guard case .connecting(let parts) = exchange.phase else { return }
                exchange.phase = .forwarding
                self.requestSent(exchange, context: context)
                for part in parts { handler.send(part, flush: false) }
                handler.flush()
                GlueHandler.startReading(connection.channel)
                self.resumeReadingIfHeld(context: context)
            }
        }
    }

    /// Starts the clock for `upstream_service_time` and Envoy's route timeout.
    private func requestSent(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        exchange.upstreamRequestSent = NIODeadline.now()
        let timeout = self.limits.upstream
        self.setDeadline(.response(context.eventLoop.now + timeout, timeout), context: context)
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

    /// Turns an upgraded exchange into a raw tunnel, once the 101 has been relayed.
    private func switchToTunnel(_ exchange: HTTPExchange, upstream: UpstreamHTTPHandler) {
        guard let upstreamChannel = upstream.channel else {
            if let context = self.context { self.closeDownstream(context) }
            upstream.close()
            return
        }
        self.upstream = nil
        upstream.downstream = nil
        self.glueTunnel(exchange, upstreamChannel: upstreamChannel, upstreamHTTP: upstream)
    }

    /// Glues the downstream to `upstreamChannel` as raw bytes: the HTTP handlers leave both
    /// pipelines, and what each had read past the switch (the app's first tunnel bytes, the
    /// origin's bytes behind its 101) goes to the other side first. `upstreamHTTP` is nil for
    /// a raw upstream, as after CONNECT. The exchange is logged when the tunnel closes.
    private func glueTunnel(_ exchange: HTTPExchange, upstreamChannel: any Channel, upstreamHTTP: UpstreamHTTPHandler?) {
        guard let context = self.context, context.channel.isActive, upstreamChannel.isActive else {
            if let context = self.context { self.closeDownstream(context) }
            upstreamChannel.close(promise: nil)
            return
        }
        self.exchange = nil
        self.deadline = .none
        self.closing = true  // this handler is done with the connection
        let downstream = context.channel
        let runtime = self.runtime
        let fromApp = self.inbound
        self.inbound = nil
        let fromOrigin = upstreamHTTP?.takeTunnelBytes()
        let counters = TransferCounters()
        do {
            try GlueHandler.join(downstream: downstream, upstream: upstreamChannel, counters: counters) { counters in
                exchange.record.bytesReceived &+= counters.downstreamBytes
                exchange.record.bytesSent &+= counters.upstreamBytes
                exchange.record.duration = exchange.start.millisecondsElapsed
                runtime.completedRequest(exchange.record)
            }
            if let fromApp, fromApp.readableBytes > 0 {
                counters.downstreamBytes &+= UInt64(fromApp.readableBytes)
                upstreamChannel.writeAndFlush(fromApp, promise: nil)
            }
            if let fromOrigin, fromOrigin.readableBytes > 0 {
                counters.upstreamBytes &+= UInt64(fromOrigin.readableBytes)
                downstream.writeAndFlush(fromOrigin, promise: nil)
            }
        } catch {
            downstream.close(promise: nil)
            upstreamChannel.close(promise: nil)
            return
        }
        if let upstreamHTTP { upstreamChannel.pipeline.syncOperations.removeHandler(upstreamHTTP, promise: nil) }
        downstream.pipeline.syncOperations.removeHandler(context: context, promise: nil)
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
    private func connectTunnel(_ head: HTTP1Head, target: String, record: AccessLogRecord, config: ActiveConfig, context: ChannelHandlerContext) {
        var record = record
        record.authority = target
        guard let tunnelTarget = Authority(target, as: .hostAndPort) else {
            let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
            self.exchange = exchange
            self.respondLocally(exchange, status: .badRequest, flag: .downstreamProtocolError, body: "", context: context, closeAfter: true)
            return
        }
        let decision = config.policy.decide(tunnelTo: tunnelTarget)
        record.upstreamCluster = decision.cluster
        record.routeName = decision.routeName
        if decision.audited {
            record.istioPolicyStatus = Decision.auditDeniedStatus
            self.runtime.metrics.auditDenied(.connect, host: tunnelTarget.host)
        }
        let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
        self.exchange = exchange
        guard case .forward(let upstreamTarget) = decision.action else {
            self.runtime.metrics.denied(.connect)
            self.runtime.logger.info("denied CONNECT \(target) from the app", metadata: ["reason": "\(decision.reason)"])
            self.respondLocally(exchange, status: .forbidden, flag: .noRouteFound, body: "", context: context, closeAfter: true)
            return
        }
        exchange.phase = .connecting([])
        self.runtime.connector.connect(
            target: upstreamTarget,
            gateway: config.gateway,
            eventLoop: context.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let failure):
                exchange.phase = .failed
                exchange.record.upstreamTransportFailureReason = failure.transportFailureReason
                self.respondLocally(exchange, status: .serviceUnavailable, flag: failure.responseFlag, body: "", context: context, closeAfter: true)
            case .success(let connection):
                exchange.record.responseCode = 200
                exchange.record.upstreamHost = connection.remote.logDescription
                exchange.record.upstreamLocalAddress = connection.channel.localAddress?.logDescription
                exchange.responseStarted = true
                var answer = self.allocator.buffer(capacity: 96)
                HTTP1Rewrite.writeLocalResponse(
                    versionMinor: exchange.requestVersionMinor,
                    status: 200,
                    reason: "OK",
                    fields: [("date", HTTPDate.now()), ("server", "sluice")],
                    body: "",
                    includeBody: false,
                    to: &answer
                )
                context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)
                self.glueTunnel(exchange, upstreamChannel: connection.channel, upstreamHTTP: nil)
            }
        }
    }

    /// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: X`).
    /// `h2c` is not one: as Envoy does by default, the request goes on as HTTP/1.1 with
    /// `Upgrade` and `HTTP2-Settings` dropped (hop-by-hop), so no upgraded connection escapes
    /// the per-stream decisions (docs/http2.md).
    static func requestedUpgrade(_ head: HTTP1Head) -> String? {
        guard head.connectionUpgrade, let upgrade = head.upgrade, head.knownMethod != .connect else { return nil }
        let text = head.string(upgrade)
        return text.lowercased() == "h2c" ? nil : text
    }

    /// Every `x-forwarded-for` value the request carries, joined as one list.
    static func forwardedFor(_ head: HTTP1Head) -> String {
        var values: [String] = []
        for field in head.fields where head.nameEquals(field, "x-forwarded-for") {
            values.append(head.string(field.value))
        }
        return values.joined(separator: ", ")
    }

    static func hasBody(_ head: HTTP1Head) -> Bool {
        head.expectContinue || head.hasTransferEncoding || (head.contentLength ?? 0) > 0
    }

    /// This connection's own upstream if it goes to `target` and is idle, else an idle one
    /// from the event loop's pool; the previous upstream goes back to the pool.
    private func reusableUpstream(for target: UpstreamTarget) -> UpstreamHTTPHandler? {
        // `reusable` turns false when the connection closes (channelInactive), so an open
        // channel need not be asked for (that costs a pipeline and lifecycle lookup).
        if let upstream = self.upstream, upstream.reusable, !upstream.busy, upstream.isAttached,
            upstream.target == target
        {
            return upstream
        }
        self.releaseUpstream()
        return UpstreamPool.current.take(target)
    }

    private func attach(_ exchange: HTTPExchange, to upstream: UpstreamHTTPHandler) {
        upstream.downstream = self
        upstream.busy = true
        upstream.expectResponse(toHEAD: exchange.isHEAD, stripChunkFraming: exchange.requestVersionMinor == 0)
        exchange.record.upstreamHost = upstream.remoteText
        exchange.record.upstreamLocalAddress = upstream.localText
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

    func upstreamResponse(_ part: UpstreamResponsePart, from upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream, let exchange = self.exchange, let context = self.context else { return }
        switch part {
        case .head(let head):
            if head.status / 100 == 1 && head.status != 101 {
                // An interim answer (100, 103): not relayed. The proxy answered any
                // `Expect: 100-continue` itself, and an HTTP/1.0 app must not see one.
                exchange.interimResponse = true
                return
            }
            self.deadline = .none
            exchange.responseStarted = true
            exchange.record.responseCode = head.status
            var edits = HTTP1Rewrite.ResponseEdits(versionMinor: exchange.requestVersionMinor)
            if let sent = exchange.upstreamRequestSent {
                let ms = sent.millisecondsElapsed
                exchange.record.upstreamServiceTime = ms
                edits.serviceTimeMs = ms
            }
            if !head.isKeepAlive || upstream.isCloseDelimited { upstream.reusable = false }
            if exchange.requestVersionMinor == 0 && head.transferEncodingChunked {
                // De-chunked for an HTTP/1.0 app: the end is the connection's close.
                edits.dropTransferEncoding = true
                exchange.closeAfterResponse = true
            }
            if upstream.isCloseDelimited { exchange.closeAfterResponse = true }
            if head.status == 101 {
                guard let upgrade = exchange.upgrade else {
                    self.upstreamProtocolError(upstream, error: .malformed("101 to a request that asked for no upgrade"))
                    return
                }
                // The origin accepted the upgrade: pass the 101 on; after it both sides become a tunnel.
                exchange.switching = true
                upstream.reusable = false
                edits.connection = .upgrade(head.upgrade.map(head.string) ?? upgrade)
            } else if !exchange.keepAlive || self.draining || exchange.closeAfterResponse {
                edits.connection = .close
            } else if exchange.requestVersionMinor == 0 {
                edits.connection = .keepAlive
            }
            let smallBody = head.contentLength.map { $0 <= Int64(Self.coalescedBodyBytes) ? Int($0) : 0 } ?? 0
            var bytes = self.allocator.buffer(capacity: HTTP1Rewrite.downstreamResponseBound(head, edits: edits) + smallBody)
            HTTP1Rewrite.writeDownstreamResponse(head, edits: edits, to: &bytes)
            if exchange.switching {
                // The 101 is the whole response; what follows is the upgraded protocol's. The
                // tunnel is glued after this callback returns (the upstream handler is mid-read).
                exchange.responseEnded = true
                upstream.busy = false
                context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let tunnelExchange = NIOLoopBound(exchange, eventLoop: context.eventLoop)
                let tunnelUpstream = NIOLoopBound(upstream, eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    handler.value.switchToTunnel(tunnelExchange.value, upstream: tunnelUpstream.value)
                }
                return
            }
            self.responseHead = bytes
            self.unflushed = true
        case .body(var body):
            exchange.record.bytesSent &+= UInt64(body.readableBytes)
            self.unflushed = true
            if var pending = self.responseHead {
                self.responseHead = nil  // `pending` is now the only reference: appended in place
                // A body fits when the head's buffer was sized for it (Content-Length up to
                // `coalescedBodyBytes`): appended without growing the buffer.
                if body.readableBytes <= pending.writableBytes {
                    pending.writeBuffer(&body)
                    self.responseHead = pending
                    return
                }
                context.write(self.wrapOutboundOut(pending), promise: nil)
            }
            context.write(self.wrapOutboundOut(body), promise: nil)
        case .end:
            if exchange.interimResponse {
                exchange.interimResponse = false
                return
            }
            exchange.responseEnded = true
            upstream.busy = false
            let closeAfter = !exchange.keepAlive || exchange.closeAfterResponse
            if closeAfter || self.draining {
                self.flushDownstream(context)
            } else {
                // The connection stays open: the flush waits for the end of this loop tick.
                self.flushDownstreamAtEndOfTick()
            }
            if !upstream.reusable { self.dropUpstream() }
            if exchange.isDone {
                self.finish(exchange, context: context, closeAfter: closeAfter)
            }
        }
    }

    func upstreamReadComplete(from upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream, let context = self.context else { return }
        self.flushDownstream(context)
    }

    private func flushDownstream(_ context: ChannelHandlerContext) {
        guard self.unflushed else { return }
        self.unflushed = false
        self.deferredFlush.covered()
        if let pending = self.responseHead {
            // One pass through the pipeline for the bytes and the flush.
            self.responseHead = nil
            context.writeAndFlush(self.wrapOutboundOut(pending), promise: nil)
        } else {
            context.flush()
        }
    }

    /// As `flushDownstream`, but only the bytes go now; the flush waits for the end of the
    /// loop tick (`TickFlushes`).
    private func flushDownstreamAtEndOfTick() {
        guard self.unflushed else { return }
        self.unflushed = false
        let pending = self.responseHead
        self.responseHead = nil
        self.deferredFlush.write(pending)
    }

    /// Closes the app's connection, sending first what a deferred flush still holds.
    private func closeDownstream(_ context: ChannelHandlerContext) {
        self.deferredFlush.flushNow()
        context.close(promise: nil)
    }

    /// A response whose Content-Length is at most this has room reserved behind its head, and
    /// its body rides in the head's write (copied); other bodies are written as the buffers read.
    static let coalescedBodyBytes = 4096

    func upstreamBecameWritable(_ upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream, let context = self.context else { return }
        self.resumeReadingIfHeld(context: context)
    }

    /// The upstream's response could not be framed (Envoy's `UPE`): 502 if nothing was
    /// relayed yet, else the app's connection is cut.
    func upstreamProtocolError(_ upstream: UpstreamHTTPHandler, error: HTTP1ParseError) {
        guard upstream === self.upstream, let exchange = self.exchange, let context = self.context else { return }
        self.runtime.logger.warning(
            "bad HTTP response from upstream",
            metadata: ["authority": "\(exchange.record.authority ?? "-")", "error": "\(error)"]
        )
        self.dropUpstream()
        self.failExchange(
            exchange,
            flag: .upstreamProtocolError,
            status: .badGateway,
            transportFailure: "protocol_error",
            resetReason: "protocol error",
            context: context
        )
    }

    /// The upstream failed the exchange in flight: the app's connection is cut if part of the
    /// response was relayed, else it gets Envoy's local answer for `transportFailure`.
    private func failExchange(
        _ exchange: HTTPExchange,
        flag: ResponseFlags,
        status: LocalStatus,
        transportFailure: String,
        resetReason: String,
        context: ChannelHandlerContext
    ) {
        exchange.record.responseFlags.insert(flag)
        if exchange.responseStarted {
            // Mid-body: the response cannot be completed; the app must see a truncated transfer.
            exchange.responseEnded = true
            self.finish(exchange, context: context, closeAfter: true)
            return
        }
        exchange.phase = .failed
        exchange.record.upstreamTransportFailureReason = transportFailure
        self.respondLocally(
            exchange,
            status: status,
            flag: nil,
            body: "upstream connect error or disconnect/reset before headers. reset reason: \(resetReason)\n",
            context: context,
            closeAfter: !exchange.requestEnded
        )
    }

    func upstreamClosed(_ upstream: UpstreamHTTPHandler) {
        guard upstream === self.upstream else { return }
        self.upstream = nil
        upstream.downstream = nil
        guard let exchange = self.exchange, !exchange.responseEnded, let context = self.context else { return }
        guard case .forwarding = exchange.phase else { return }
        self.failExchange(
            exchange,
            flag: .upstreamConnectionTermination,
            status: .serviceUnavailable,
            transportFailure: "connection_termination",
            resetReason: "connection termination",
            context: context
        )
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
        status: LocalStatus,
        flag: ResponseFlags?,
        body: String,
        context: ChannelHandlerContext,
        closeAfter: Bool = false
    ) {
        if let flag { exchange.record.responseFlags.insert(flag) }
        exchange.record.responseCode = status.code
        exchange.responseStarted = true
        exchange.responseEnded = true
        let close = closeAfter || !exchange.keepAlive
        var fields = [("content-length", String(body.utf8.count))]
        if !body.isEmpty { fields.append(("content-type", "text/plain")) }
        fields.append(("date", HTTPDate.now()))
        fields.append(("server", "sluice"))
        if close {
            fields.append(("connection", "close"))
        } else if exchange.requestVersionMinor == 0 {
            fields.append(("connection", "keep-alive"))
        }
        let includeBody = !body.isEmpty && !exchange.isHEAD
        var bytes = self.allocator.buffer(capacity: 160 + body.utf8.count)
        HTTP1Rewrite.writeLocalResponse(
            versionMinor: exchange.requestVersionMinor,
            status: status.code,
            reason: status.reason,
            fields: fields,
            body: body,
            includeBody: includeBody,
            to: &bytes
        )
        if includeBody { exchange.record.bytesSent &+= UInt64(body.utf8.count) }
        context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
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
        // Logged in place, neither copied nor swapped out for an empty record.
        exchange.record.duration = exchange.start.millisecondsElapsed
        self.runtime.completedRequest(&exchange.record, memo: &self.seriesMemo)
        if (closeAfter || self.draining) && !self.closing {
            self.closing = true
            self.inbound = nil
            self.flushDownstream(context)
            // Close only after the response's last bytes are out: NIO fails writes still
            // pending at close, which would cut the body short. Writes complete in order, so
            // an empty write behind them completes when they have.
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(self.wrapOutboundOut(self.allocator.buffer(capacity: 0)), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else if !self.closing {
            self.setDeadline(.idle(context.eventLoop.now + self.limits.idle), context: context)
            // A pipelined request may be buffered already.
            self.processInbound(context: context)
            self.resumeReadingIfHeld(context: context)
        }
    }

    /// An exchange for an answer we give before any request head was read (400, 408, 431).
    private func makeLocalExchange() -> HTTPExchange {
        var record = AccessLogRecord()
        self.connection.start(&record, at: wallClockMillis())
        let exchange = HTTPExchange(phase: .failed, record: record, versionMinor: 1, keepAlive: false, isHEAD: false)
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
        if context.eventLoop.now < at {
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
            if self.exchange == nil { self.closeDownstream(context) }
        case .firstHead:
            guard self.exchange == nil else { return }
            self.runtime.logger.info("request head not received in time from \(self.connection.remoteText ?? "-")")
            let exchange = self.makeLocalExchange()
            self.respondLocally(exchange, status: .requestTimeout, flag: nil, body: "", context: context, closeAfter: true)
        case .response(_, let timeout):
            if let exchange = self.exchange { self.upstreamTimedOut(exchange, after: timeout) }
        }
    }
}
