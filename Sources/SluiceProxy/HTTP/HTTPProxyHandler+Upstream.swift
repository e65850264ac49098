import Logging
import NIOCore
import SluiceCore

// The upstream side of HTTPProxyHandler: connecting and reusing upstream connections, and
// relaying their responses (its part of the protocol between the two HTTP handlers).
extension HTTPProxyHandler {
    // MARK: upstream connection

    func connect(_ exchange: HTTPExchange, target: UpstreamTarget, config: ActiveConfig, context: ChannelHandlerContext) {
        let completion: (Result<any HTTPUpstream, any Error>) -> Void = { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let upstream) = result { upstream.close() }
                return
            }
            switch result {
            case .failure(UpstreamError.overflow):
                self.respondOverflow(exchange, closeAfter: !exchange.state.requestEnded, context: context)
            case .failure(let error as UpstreamError):
                if error.isConnectFailure {
                    if exchange.defaultRetries, exchange.retries == nil {
                        // Armed now: the request is still queued whole for the next dial.
                        self.armRetries(exchange, retries: nil, method: exchange.record.method ?? "", head: ByteBuffer(),
                                        target: target, config: config)
                    }
                    if self.retryIfAllowed(exchange, after: .connectFailure, context: context) { return }
                }
                self.runtime.logger.warning(
                    "upstream connect failed",
                    metadata: ["authority": "\(exchange.record.authority ?? "-")", "error": "\(error)"]
                )
                exchange.state.failed()
                exchange.record.upstreamTransportFailureReason = error.transportFailureReason
                let body = error.localReplyBody
                self.respondLocally(
                    exchange,
                    status: .serviceUnavailable,
                    flag: error.responseFlag,
                    body: body,
                    context: context,
                    closeAfter: !exchange.state.requestEnded
                )
            case .failure:
                // The connection could not be set up (it closed at once).
                self.closeDownstream(context)
            case .success(let upstream):
                self.upstream = upstream
                self.attach(exchange, to: upstream)
                guard let parts = exchange.state.connected() else { return }
                self.requestSent(exchange, context: context)
                for part in parts { upstream.send(part) }
                upstream.flush()
                upstream.startReading()
                self.resumeReadingIfHeld(context: context)
            }
        }
        if exchange.cluster != nil {
            // The cluster's load balancer picks the endpoint: this connection's own upstream
            // goes back to the pool, where the pick may find it.
            self.releaseUpstream()
            self.armResponseDeadline(exchange, context: context)
        }
        self.upstreams.connect(
            target: target, tls: exchange.upstreamTLS, config: config, eventLoop: context.eventLoop, limits: self.limits.framer,
            cluster: exchange.cluster, completion: completion)
    }

    /// Starts the clock for `upstream_service_time` and Envoy's route timeout.
    func requestSent(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        exchange.upstreamRequestSent = NIODeadline.now()
        if exchange.retries != nil { self.armPerTryTimeout(exchange, context: context) }
        self.armResponseDeadline(exchange, context: context)
    }

    /// Envoy's route timeout, armed once: it spans the retries (and, under a DestinationRule,
    /// the wait for a connection slot).
    func armResponseDeadline(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        guard !exchange.responseDeadlineArmed else { return }
        exchange.responseDeadlineArmed = true
        let timeout = exchange.routeTimeout ?? self.limits.upstream
        self.setDeadline(.response(context.eventLoop.now + timeout, timeout), context: context)
    }

    /// This connection's own upstream if it goes to `target` with `tls` and is idle, else an
    /// idle one from the provider (the event loop's pool); the previous upstream goes back to it.
    func reusableUpstream(for target: UpstreamTarget, tls: UpstreamTLS?) -> (any HTTPUpstream)? {
        // `isIdleAndReusable` turns false when the connection closes (channelInactive), so an
        // open channel need not be asked for (that costs a pipeline and lifecycle lookup).
        if let upstream = self.upstream, upstream.isIdleAndReusable, upstream.target == target, upstream.tls == tls {
            return upstream
        }
        self.releaseUpstream()
        return self.upstreams.idle(for: target, tls: tls)
    }

    func attach(_ exchange: HTTPExchange, to upstream: any HTTPUpstream) {
        upstream.beginExchange(for: self, toHEAD: exchange.isHEAD, stripChunkFraming: exchange.requestVersionMinor == 0)
        if exchange.cluster != nil { self.clusterTryStarted(exchange, on: upstream) }
        exchange.record.upstreamHost = upstream.remoteText
        exchange.record.upstreamLocalAddress = upstream.localText
    }

    /// Lets go of the current upstream connection, kept for reuse when it is idle and reusable.
    func releaseUpstream() {
        guard let upstream = self.upstream else { return }
        self.upstream = nil
        upstream.release()
    }

    /// Lets go of the current upstream connection (closing it).
    func dropUpstream() {
        guard let upstream = self.upstream else { return }
        self.upstream = nil
        upstream.detach()
        upstream.close()
    }
}

// MARK: upstream events (on this event loop)

extension HTTPProxyHandler: HTTPUpstreamSink {
    /// A response whose Content-Length is at most this has room reserved behind its head, and
    /// its body rides in the head's write (copied); other bodies are written as the buffers read.
    static let coalescedBodyBytes = 4096

    func upstreamResponse(_ part: UpstreamResponsePart, from upstream: any HTTPUpstream) {
        guard upstream === self.upstream, let exchange = self.exchange, let context = self.context else { return }
        switch part {
        case .head(let head):
            if exchange.cluster != nil, head.status >= 200 { self.clusterTryOutcome(exchange, .status(head.status)) }
            if exchange.perTryTimer != nil, head.status >= 200 {
                exchange.perTryTimer?.cancel()
                exchange.perTryTimer = nil
            }
            if head.status >= 400, exchange.retries != nil, !exchange.state.responseStarted,
               self.retryIfAllowed(exchange, after: .status(head.status), context: context) {
                return
            }
            if exchange.state.responseHead(status: head.status) == .interim {
                // An interim answer (100, 103): not relayed. The proxy answered any
                // `Expect: 100-continue` itself, and an HTTP/1.0 app must not see one.
                return
            }
            self.deadlines.clear()
            exchange.record.responseCode = head.status
            var edits = HTTP1Rewrite.ResponseEdits(versionMinor: exchange.requestVersionMinor)
            edits.routeHeaders = exchange.responseHeaders
            if let sent = exchange.upstreamRequestSent {
                let ms = sent.millisecondsElapsed
                exchange.record.upstreamServiceTime = ms
                edits.serviceTimeMs = ms
            }
            let closeDelimited = upstream.isCloseDelimited
            if !head.isKeepAlive || closeDelimited { upstream.notReusable() }
            if exchange.requestVersionMinor == 0 && head.transferEncodingChunked {
                // De-chunked for an HTTP/1.0 app: the end is the connection's close.
                edits.dropTransferEncoding = true
                exchange.state.responseDelimitedByClose()
            }
            if closeDelimited { exchange.state.responseDelimitedByClose() }
            if head.status == 101 {
                guard let upgrade = exchange.upgrade else {
                    self.upstreamProtocolError(upstream, error: .malformed("101 to a request that asked for no upgrade"))
                    return
                }
                // The origin accepted the upgrade: pass the 101 on; after it both sides become a tunnel.
                exchange.state.switchingProtocols()
                upstream.notReusable()
                edits.connection = .upgrade(head.upgrade.map(head.string) ?? upgrade)
            } else if exchange.state.closesConnection || self.state.isDraining {
                edits.connection = .close
            } else if exchange.requestVersionMinor == 0 {
                edits.connection = .keepAlive
            }
            let smallBody = head.contentLength.map { $0 <= Int64(Self.coalescedBodyBytes) ? Int($0) : 0 } ?? 0
            var bytes = self.allocator.buffer(capacity: HTTP1Rewrite.downstreamResponseBound(head, edits: edits) + smallBody)
            HTTP1Rewrite.writeDownstreamResponse(head, edits: edits, to: &bytes)
            if exchange.state.switching {
                // The 101 is the whole response; what follows is the upgraded protocol's. The
                // tunnel is glued after this callback returns (the upstream handler is mid-read).
                exchange.state.responseCut()
                upstream.responseEnded()
                context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let tunnelExchange = NIOLoopBound(exchange, eventLoop: context.eventLoop)
                let tunnelUpstream = NIOLoopBound(upstream, eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    handler.value.switchToTunnel(tunnelExchange.value, upstream: tunnelUpstream.value)
                }
                return
            }
            self.writer.hold(bytes)
        case .body(var body):
            exchange.record.bytesSent &+= UInt64(body.readableBytes)
            // A body fits when the head's buffer was sized for it (Content-Length up to
            // `coalescedBodyBytes`): appended without growing the buffer.
            if !self.writer.appendToHeld(&body) {
                self.writer.writeThrough(body)
            }
        case .end:
            guard exchange.state.responseEndFramed() else { return }  // an interim response's end
            upstream.responseEnded()
            let closeAfter = exchange.state.closesConnection
            if closeAfter || self.state.isDraining {
                self.writer.flush()
            } else {
                // The connection stays open: the flush waits for the end of this loop tick.
                self.writer.flushAtEndOfTick()
            }
            if !upstream.isReusable { self.dropUpstream() }
            if exchange.isDone {
                self.finish(exchange, context: context, closeAfter: closeAfter)
            }
        }
    }

    func upstreamReadComplete(from upstream: any HTTPUpstream) {
        guard upstream === self.upstream, self.context != nil else { return }
        self.writer.flush()
    }

    func upstreamBecameWritable(_ upstream: any HTTPUpstream) {
        guard upstream === self.upstream, let context = self.context else { return }
        self.resumeReadingIfHeld(context: context)
    }

    /// The upstream's response could not be framed (Envoy's `UPE`): 502 if nothing was
    /// relayed yet, else the app's connection is cut.
    func upstreamProtocolError(_ upstream: any HTTPUpstream, error: HTTP1ParseError) {
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

    func upstreamClosed(_ upstream: any HTTPUpstream) {
        guard upstream === self.upstream else { return }
        self.upstream = nil
        upstream.detach()
        guard let exchange = self.exchange, !exchange.state.responseEnded, let context = self.context else { return }
        guard exchange.state.phase == .forwarding else { return }
        if exchange.cluster != nil, !exchange.state.responseStarted { self.clusterTryOutcome(exchange, .connectFailure) }
        if !exchange.state.responseStarted, self.retryIfAllowed(exchange, after: .reset, context: context) { return }
        self.failExchange(
            exchange,
            flag: .upstreamConnectionTermination,
            status: .serviceUnavailable,
            transportFailure: "connection_termination",
            resetReason: "connection termination",
            context: context
        )
    }
}
