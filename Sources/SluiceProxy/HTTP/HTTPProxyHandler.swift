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
///
/// The handler by responsibility, one file each:
/// - this file: inbound framing and read holds, the request's head, body and end, the
///   decision, and finishing an exchange (its log record);
/// - `+Upstream`: connecting and reusing upstreams, relaying the response (`HTTPUpstreamSink`);
/// - `+LocalReplies`: the answers it makes itself (bytes from `HTTP1LocalReply`);
/// - `+Deadlines`: header-read, idle and response deadlines (`ConnectionDeadlineStateMachine`);
/// - `+Tunnel`: the app's CONNECT and upgraded (101) exchanges as raw tunnels.
/// Its state lives in value types that take events and return actions:
/// `HTTPConnectionStateMachine` (framing, open/draining/closed, writability),
/// `ReadHoldStateMachine`, `ConnectionDeadlineStateMachine`; the response bytes go out
/// through a `CoalescingWriter`.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let runtime: ProxyRuntime
    let connection: DownstreamConnection
    /// Where upstream connections come from (the pool and the connector; a test double in
    /// Tests/SluiceProxyTests/HTTPHandlerPeerTests.swift).
    let upstreams: any HTTPUpstreamProvider
    var context: ChannelHandlerContext?
    var exchange: HTTPExchange?
    var upstream: (any HTTPUpstream)?
    var framer: HTTP1Framer
    /// Bytes read but not framed yet: a partial head, or a pipelined request waiting its turn.
    var inbound: ByteBuffer?
    var state = HTTPConnectionStateMachine()
    var readHold = ReadHoldStateMachine()
    /// Response bytes out: a head held for its small body and the flush; a kept-alive
    /// response's last bytes flushed at the end of the loop tick.
    let writer = CoalescingWriter()
    /// Which configuration the last request was handled under (its token, not the config: an
    /// idle connection must not keep a replaced registry alive), and its limits with the
    /// timeouts already converted: done again only when a reload replaced the configuration.
    var configIdentity: ConfigIdentity?
    var limits = ConnectionLimits(Limits())
    /// What the connection waits for, until when, and when its one timer fires.
    var deadlines = ConnectionDeadlineStateMachine()
    var timer: LoopTimer?
    /// The last request's authority and decision: a keep-alive connection asks for the same
    /// host again and again, and the decision is a pure function of the host, the original
    /// destination (fixed per connection) and the configuration.
    var lastDecision: CachedDecision?
    /// The metric series the last request was counted in.
    var seriesMemo = RequestSeriesMemo()
    /// The channel's allocator, looked up once rather than per request head.
    var allocator = ByteBufferAllocator()

    /// Its name in the pipeline (NIO would format one per connection; `SniffHandler.pipelineName`).
    static let pipelineName = "http-proxy"

    init(runtime: ProxyRuntime, connection: DownstreamConnection, upstreams: (any HTTPUpstreamProvider)? = nil) {
        self.runtime = runtime
        self.connection = connection
        self.upstreams = upstreams ?? PooledHTTPUpstreams(connector: runtime.connector)
        self.framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
    }

    // MARK: downstream events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.writer.attach(context)
        _ = self.state.writabilityChanged(context.channel.isWritable)
        self.allocator = context.channel.allocator
        self.adopt(self.runtime.config)
        if let warm = ConnectionWarmStart.current.hints(
            for: self.runtime, destination: self.connection.destinationIP, port: self.connection.destinationPort)
        {
            self.lastDecision = warm.decision
            self.seriesMemo = warm.series
        }
        self.setDeadline(.firstHead(context.eventLoop.now + self.limits.headerRead), context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if self.lastDecision != nil {
            ConnectionWarmStart.current.remember(
                runtime: self.runtime, destination: self.connection.destinationIP, port: self.connection.destinationPort,
                decision: self.lastDecision, series: self.seriesMemo)
        }
        self.cancelTimer()
        self.context = nil
        self.writer.attach(nil)
        self.releaseUpstream()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.state.isClosed { return }
        // Taken out, appended to and put back: a non-inlined mutating call on a class property
        // makes the compiler check exclusivity at run time on every access to that property.
        var inbound = self.inbound.take()
        inbound.append(self.unwrapInboundIn(data))
        self.inbound = inbound
        self.processInbound(context: context)
    }

    /// Frames what is buffered, one request at a time: stops at the end of a request whose
    /// response is still to come (what follows is a pipelined request, or a tunnel's bytes).
    func processInbound(context: ChannelHandlerContext) {
        guard self.state.startFraming() else { return }
        defer { self.state.stopFraming() }
        // Until the framer needs more: a head that used up every byte read may still be
        // followed by its end (no body), which costs no byte.
        loop: while self.state.mayFrame(exchangeInFlight: self.exchange != nil), var buffer = self.inbound {
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
                self.state.requestHeadFramed()
                self.requestHead(head, context: context)
            case .body(let body):
                self.requestBody(body)
            case .end:
                self.state.requestEndFramed()
                self.requestEnd(context: context)
            }
        }
        if let buffer = self.inbound, buffer.readableBytes == 0 { self.inbound = nil }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange = self.exchange, exchange.state.phase == .forwarding {
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
        // The app sent FIN (nothing more will come), or the proxy drains: finish the exchange
        // in flight (its response still goes out), then close; with nothing in flight, close now.
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.drain(context: context)
            return
        }
        if event is DrainEvent {
            self.drain(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func drain(context: ChannelHandlerContext) {
        switch self.state.drain(exchangeInFlight: self.exchange != nil) {
        case .closeNow: self.closeDownstream(context)
        case .afterExchange: break
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if self.state.writabilityChanged(context.channel.isWritable) { self.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    /// The downstream can take response bytes (the upstream holds its reads while not).
    var isWritable: Bool { self.context != nil && self.state.channelWritable }

    func read(context: ChannelHandlerContext) {
        switch self.readHold.read(held: self.isReadHeld) {
        case .read: context.read()
        case .hold: break
        }
    }

    /// True while reading must wait: a pipelined request is buffered behind the one in
    /// flight, the upstream is being dialled, or it cannot take more bytes.
    private var isReadHeld: Bool {
        guard let exchange = self.exchange else { return false }
        let upstreamHolds: Bool
        switch exchange.state.phase {
        case .connecting: upstreamHolds = true
        case .forwarding: upstreamHolds = !(self.upstream?.isWritable ?? true)
        case .denied, .failed: upstreamHolds = false
        }
        return self.state.isReadHeld(
            exchangeInFlight: true,
            bufferedBytes: self.inbound?.readableBytes ?? 0,
            upstreamHolds: upstreamHolds
        )
    }

    func resumeReadingIfHeld(context: ChannelHandlerContext) {
        if self.readHold.resume(held: self.isReadHeld) {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.runtime.logger.debug("downstream error: \(error)")
        self.closeDownstream(context)
    }

    /// Takes on the configuration in force (on the first request and after a reload).
    private func adopt(_ config: ActiveConfig) {
        self.configIdentity = config.identity
        self.limits = ConnectionLimits(config.limits)
        self.framer.limits = self.limits.framer
    }

    // MARK: request parts

    private func requestHead(_ head: HTTP1Head, context: ChannelHandlerContext) {
        self.deadlines.clear()
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
            let decided = self.decide(authority, head: head, destination: destination, port: port, config: config)
        else {
            let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
            self.exchange = exchange
            self.respondLocally(
                exchange,
                status: .badRequest,
                flag: .downstreamProtocolError,
                body: HTTP1LocalReply.missingHostBody,
                context: context,
                closeAfter: true
            )
            return
        }
        // Read through the cached object: copying the Decision out retains each of its strings.
        record.upstreamCluster = decided.decision.cluster
        record.routeName = decided.decision.routeName
        if decided.decision.audited {
            record.istioPolicyStatus = Decision.auditDeniedStatus
            self.runtime.metrics.auditDenied(.http, host: decided.host)
        }
        // AuthorizationPolicy at the gateway (HTTPProxyHandler+Authorization).
        if self.authorizationDenied(
            head, authority: authority, decision: decided.decision, record: &record, config: config, context: context)
        {
            return
        }
        let upgrade = head.requestedUpgrade

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
            self.runtime.metrics.tcpOpened(cluster: decided.decision.cluster, connection: self.connection)
            self.runtime.completedConnection(record)
            self.state.closed()
            self.inbound = nil
            context.close(promise: nil)
        case .deny where decided.decision.route?.behaviour.redirect != nil:
            // A redirect route is answered locally, not refused.
            let exchange = HTTPExchange(phase: .denied, taking: &record, head: head)
            exchange.routeAnswer = self.routeAnswer(for: decided.decision, head: head, authority: authority)
            self.exchange = exchange
            if head.announcesBody || upgrade != nil {
                self.respondDenied(exchange, context: context, closeAfter: true)
            }
        case .deny:
            let exchange = HTTPExchange(phase: .denied, taking: &record, head: head)
            exchange.routeAnswer = self.routeAnswer(for: decided.decision, head: head, authority: authority)
            self.exchange = exchange
            self.runtime.metrics.denied(.http)
            self.runtime.logger.info(
                "denied http \(decided.host) to \(self.connection.destinationText)",
                metadata: ["reason": "\(decided.decision.reason)"]
            )
            // A request that will send a body (or waits for 100-continue, or asks for an
            // upgrade, after which it may send anything) is answered at once and the
            // connection closed, so we never wait for bytes the client holds back.
            if head.announcesBody || upgrade != nil {
                self.respondDenied(exchange, context: context, closeAfter: true)
            }
        case .forward(let upstreamTarget):
            var edits = HTTP1Rewrite.RequestEdits(upgrade: upgrade, requestID: generatedID)
            if self.runtime.role == .gateway, let remoteIP = self.connection.remote?.ipAddress {
                let existing = head.allForwardedFor
                edits.forwardedFor = existing.isEmpty ? remoteIP : "\(existing), \(remoteIP)"
            }
            if head.expectContinue {
                // Envoy answers `Expect: 100-continue` itself rather than relaying it.
                edits.dropExpect = true
                var interim = self.allocator.buffer(capacity: 32)
                HTTP1LocalReply.writeContinue(versionMinor: head.versionMinor, to: &interim)
                context.writeAndFlush(self.wrapOutboundOut(interim), promise: nil)
            }
            // Through the box: a read of `decision.route` copies the whole selection out.
            let routeBox = decided.decision.routeBox
            if let routeBox {
                edits.route = RouteRequestEdits.forRoute(
                    routeBox.selection.behaviour, matchedURI: routeBox.selection.matchedURI, target: target)
                // Envoy's router rewrites `:authority` in the request's own header map before
                // the access log reads it: %REQ(:AUTHORITY)% is the rewritten host.
                if let rewritten = edits.route?.authority { record.authority = rewritten }
            }
            record.xForwardedFor = edits.forwardedFor ?? head.forwardedFor.map(head.string)
            var bytes = self.allocator.buffer(capacity: HTTP1Rewrite.upstreamRequestBound(head, edits: edits))
            HTTP1Rewrite.writeUpstreamRequest(head, edits: edits, to: &bytes)
            let exchange = HTTPExchange(phase: .forwarding, taking: &record, head: head)
            exchange.upgrade = upgrade
            exchange.upstreamTLS = decided.decision.upstreamTLS
            self.exchange = exchange
            // Only a DestinationRule policy gives a cluster state (see `ProxyClusters.state(for:route:)`).
            if routeBox.map({ $0.selection.trafficPolicy != nil }) ?? decided.decision.hasClusterPolicy,
               let cluster = self.clusterState(for: decided.decision, route: routeBox?.selection) {
                // DestinationRule connectionPool: past http2MaxRequests outstanding, 503 UO.
                guard cluster.startRequest() else {
                    exchange.state.startConnecting(with: bytes)
                    self.respondOverflow(exchange, closeAfter: head.announcesBody || upgrade != nil, context: context)
                    return
                }
                exchange.cluster = cluster
            }
            if let routeBox,
               self.applyRoute(routeBox, to: exchange, method: head.methodString, announcesBody: head.announcesBody || upgrade != nil,
                               request: bytes, target: upstreamTarget, config: config, context: context) {
                return
            }
            // A registered host without a VirtualService: Istio's default route
            // (BuildDefaultHTTPOutboundRoute) carries the default retry policy. Passthrough
            // traffic has none.
            exchange.defaultRetries = routeBox == nil && decided.decision.match != nil
            if exchange.cluster == nil, let upstream = self.reusableUpstream(for: upstreamTarget, tls: exchange.upstreamTLS) {
                self.upstream = upstream
                self.attach(exchange, to: upstream)
                self.requestSent(exchange, context: context)
                upstream.send(bytes)
            } else {
                exchange.state.startConnecting(with: bytes)
                self.connect(exchange, target: upstreamTarget, config: config, context: context)
            }
        }
    }

    /// The normalised host and the decision for `authority`, reusing the previous request's
    /// when the authority and the configuration are the same. Nil when it names no valid host.
    /// A decision that depends on more than the authority (VirtualService matches on uri,
    /// method or headers, weighted destinations, a fault) is made again for every request,
    /// with the request's view (`decideForRequest`).
    private func decide(
        _ authority: String, head: borrowing HTTP1Head, destination: IPAddress, port: Int, config: ActiveConfig
    ) -> CachedDecision? {
        if let last = self.lastDecision, last.config === config.identity, last.authority == authority {
            if last.decision.dependsOnlyOnAuthority { return last }
            return self.decideForRequest(authority, head: head, destination: destination, port: port, config: config, cached: last)
        }
        return self.decideForRequest(authority, head: head, destination: destination, port: port, config: config, cached: nil)
    }

    private func requestBody(_ body: ByteBuffer) {
        guard let exchange = self.exchange else { return }
        exchange.record.bytesReceived &+= UInt64(body.readableBytes)
        exchange.retries?.machine.body(body)
        switch exchange.state.requestBody(body) {
        case .send: self.upstream?.send(body)
        case .queued, .discard: break
        }
    }

    private func requestEnd(context: ChannelHandlerContext) {
        guard let exchange = self.exchange else { return }
        exchange.state.requestEnd()
        exchange.retries?.machine.ended()
        switch exchange.state.phase {
        case .connecting:
            break
        case .forwarding:
            // The request's last bytes: their flush waits for the end of this loop tick.
            self.upstream?.flushAtEndOfTick()
        case .denied:
            if !exchange.state.responseStarted {
                self.respondDenied(exchange, context: context, closeAfter: !exchange.keepAlive)
            } else if exchange.isDone {
                self.finish(exchange, context: context, closeAfter: !exchange.keepAlive)
            }
        case .failed:
            if exchange.isDone { self.finish(exchange, context: context, closeAfter: !exchange.keepAlive) }
        }
    }

    // MARK: the end of an exchange

    /// Writes the log line and readies the connection for the next request (or closes it).
    func finish(_ exchange: HTTPExchange, context: ChannelHandlerContext, closeAfter: Bool) {
        guard self.exchange === exchange else { return }
        self.exchange = nil
        self.releaseCluster(exchange)
        // Logged in place, neither copied nor swapped out for an empty record.
        exchange.record.duration = exchange.start.millisecondsElapsed
        self.runtime.completedRequest(&exchange.record, memo: &self.seriesMemo)
        switch self.state.exchangeFinished(closeAfter: closeAfter) {
        case .none:
            break
        case .close:
            self.inbound = nil
            // Close only after the response's last bytes are out: NIO fails writes still
            // pending at close, which would cut the body short. The promise rides on the
            // response's last write (no extra empty write through the pipeline).
            let written = context.eventLoop.makePromise(of: Void.self)
            self.writer.flush(completing: written)
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .awaitNextRequest:
            self.setDeadline(.idle(context.eventLoop.now + self.limits.idle), context: context)
            // A pipelined request may be buffered already.
            self.processInbound(context: context)
            self.resumeReadingIfHeld(context: context)
        }
    }

    /// Closes the app's connection, sending first what a deferred flush still holds.
    func closeDownstream(_ context: ChannelHandlerContext) {
        self.writer.flushNow()
        context.close(promise: nil)
    }
}
