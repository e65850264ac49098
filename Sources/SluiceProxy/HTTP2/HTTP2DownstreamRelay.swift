import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// The client side of one HTTP/2 connection, relayed frame by frame: Sluice's codec
/// (`HTTP2WireHandler`) decodes the connection (no stream channels), and this handler decides each stream on its HEADERS by
/// `:authority` like an HTTP/1 request by Host, answers a denied stream itself (Envoy's shape,
/// gRPC trailers-only for gRPC) and relays an allowed one to a stream of a pooled upstream
/// connection (`HTTP2UpstreamRelay`). Windows are reopened only for bytes handed on
/// (`HTTP2WindowCredit`); writes are flushed once per read on either side. One access-log line
/// per stream, when the stream closes.
final class HTTP2DownstreamRelay: ChannelInboundHandler, HTTP2WireEvents {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let runtime: ProxyRuntime
    let eventLoop: any EventLoop
    private let connection: DownstreamConnection
    let pool: HTTP2UpstreamPool
    /// The stream and connection windows announced to both peers.
    let window: Int
    private(set) var context: ChannelHandlerContext?
    private(set) var streams: [HTTP2StreamID: HTTP2RelayStream] = [:]
    /// The highest stream the client opened, and the connection's idle timer (+Idle).
    var lastStreamID = HTTP2StreamID.rootStream
    var idleTimer: LoopTimer?
    private var memo = RequestSeriesMemo()
    /// Inside a read of this connection or of one of its upstreams: writes wait for `endBatch`.
    private var batching = false
    private var needsFlush = false
    private var dirtyUpstreams: [any HTTP2StreamUpstream] = []

    init(runtime: ProxyRuntime, connection: DownstreamConnection, eventLoop: any EventLoop, window: Int) {
        self.runtime = runtime
        self.connection = connection
        self.window = window
        self.eventLoop = eventLoop
        self.pool = HTTP2UpstreamPool.current(runtime: runtime, eventLoop: eventLoop)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.streamsChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.batching = true
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            if let stream = self.streams[frame.streamID] {
                // Trailers (the codec has checked that they end the stream).
                if headers.endStream { stream.requestEnded = true }
                self.relayRequest(frame.payload.relayed, of: stream, credit: 0)
            } else {
                self.requestHeaders(headers, streamID: frame.streamID)
            }
        case .data(let data):
            guard let stream = self.streams[frame.streamID] else { return }
            stream.record.bytesReceived &+= UInt64(data.data.readableBytes)
            if data.endStream { stream.requestEnded = true }
            self.relayRequest(frame.payload.relayed, of: stream, credit: data.relayCredit)
        case .rstStream:
            guard let stream = self.streams[frame.streamID] else { return }
            stream.record.responseFlags.insert(.downstreamRemoteReset)
            self.abandon(stream)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.endBatch()
        context.fireChannelReadComplete()
    }

    // MARK: HTTP2WireEvents, from the client connection's codec

    func connectionWindowLow(remaining: Int) {
        if let increment = HTTP2WindowCredit.connectionIncrement(remaining: remaining, target: self.window) {
            self.write(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment)))
        }
    }

    func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?) {
        guard let stream = self.streams.removeValue(forKey: streamID) else { return }
        // Closed before the response ended: reset by the client or, for a protocol error on
        // the stream, by the codec. Either way the origin's stream is abandoned.
        if !stream.responseEnded { self.abandon(stream) }
        self.finish(stream)
        self.streamsChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.idleTimer?.cancel()
        self.idleTimer = nil
        let open = self.streams
        self.streams = [:]
        for stream in open.values {
            if !stream.responseEnded, !stream.record.responseFlags.contains(.downstreamRemoteReset) {
                stream.record.responseFlags.insert(.downstreamConnectionTermination)
            }
            // An HTTP/1 exchange is closed here; a shared HTTP/2 connection resets the stream.
            if let upstream = stream.upstream {
                upstream.reset(stream, code: .cancel)
                upstream.flush()
            }
            stream.phase = .done
            self.finish(stream)
        }
        // Shared connections outlive this one: what it left unflushed goes out now.
        for upstream in self.dirtyUpstreams {
            upstream.dirty = false
            upstream.flush()
        }
        self.dirtyUpstreams = []
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The codec answers protocol errors itself (RST_STREAM, or GOAWAY and close) and
        // raises none: what arrives here is the channel's own (a TLS alert, a socket error).
        context.close(promise: nil)
    }

    // MARK: request

    private func requestHeaders(_ headers: HTTP2Frame.FramePayload.Headers, streamID: HTTP2StreamID) {
        let stream = HTTP2RelayStream(downstreamID: streamID, downstream: self, window: self.window)
        self.streams[streamID] = stream
        if streamID > self.lastStreamID { self.lastStreamID = streamID }
        self.streamsChanged()
        stream.requestEnded = headers.endStream
        let runtime = self.runtime
        let config = runtime.config
        var request = headers.headers
        self.connection.start(&stream.record, at: wallClockMillis())
        // One pass for the fields the stream's record and decision read (names are lowercase:
        // the codec checked the block), not a case-insensitive scan per field.
        var fields = RequestFields()
        for (name, value, _) in request { fields.take(name, value) }
        let method = fields.method ?? ""
        let path = fields.path ?? ""
        let authorityText = fields.authority ?? fields.host
        stream.record.method = method
        stream.record.path = path
        stream.record.protocol = "HTTP/2"
        stream.record.authority = authorityText
        stream.record.userAgent = fields.userAgent
        stream.grpc = HTTP2LocalReply.isGRPC(contentType: fields.contentType)
        if let id = fields.requestID {
            stream.record.requestID = .text(id)
        } else {
            let id = makeRequestID()
            stream.record.requestID = .generated(id)
            // Not indexed: a value seen once would take a place in the origin connection's HPACK
            // table per request, pushing out the fields that do repeat (:authority, user-agent)
            // and making each encoder lookup scan a full table.
            request.add(name: "x-request-id", value: id.text, indexing: .nonIndexable)
        }

        guard let authorityText, let authority = Authority(authorityText),
            let destination = self.connection.destinationIP,
            let port = self.connection.destinationPort
        else {
            self.respondLocally(stream, status: 400, flag: .downstreamProtocolError, body: "missing or invalid :authority\n")
            return
        }
        let original = headers.headers
        let view = HTTPRequestView(method: method, path: path, header: { name in original.first(name: name) })
        let decision = config.policy.decide(
            ConnectionFacts(kind: .http(authority), destination: destination, port: port, request: view)
        )
        stream.record.upstreamCluster = decision.cluster
        stream.record.routeName = decision.routeName
        if decision.audited {
            stream.record.istioPolicyStatus = Decision.auditDeniedStatus
            runtime.metrics.auditDenied(.http, host: authority.host)
        }
        if self.authorizationDenied(stream, headers: original, authority: authorityText, decision: decision, config: config, connection: self.connection) {
            return
        }
        switch decision.action {
        case .deny:
            if self.answeredRouteRefusal(stream, decision: decision, request: original, authority: authorityText, path: path) { return }
            runtime.metrics.denied(.http)
            runtime.logger.info(
                "denied http2 \(authority.host) to \(self.connection.destinationText)",
                metadata: ["reason": "\(decision.reason)"]
            )
            switch runtime.role {
            case .sidecar: self.respondLocally(stream, status: 502, flag: nil, body: "")
            case .gateway: self.respondLocally(stream, status: 404, flag: .noRouteFound, body: "")
            }
        case .forward(let target):
            if runtime.role == .gateway, let remoteIP = self.connection.remote?.ipAddress {
                let existing = request[canonicalForm: "x-forwarded-for"].joined(separator: ", ")
                request.replaceOrAdd(name: "x-forwarded-for", value: existing.isEmpty ? remoteIP : "\(existing), \(remoteIP)")
            }
            stream.record.xForwardedFor = request.first(name: "x-forwarded-for")
            let fault = decision.routeBox.flatMap { self.applyRoute($0, to: stream, request: &request, path: path) }
            stream.phase = .connecting([(.headers(.init(headers: request, endStream: headers.endStream)), 0)])
            if let fault {
                self.applyFault(fault, to: stream, target: target, decision: decision, config: config)
            } else {
                self.forward(stream, to: target, decision: decision, config: config)
            }
        }
    }

    func connected(_ stream: HTTP2RelayStream, result: Result<any HTTP2StreamUpstream, UpstreamError>) {
        guard case .connecting(let frames) = stream.phase, self.streams[stream.downstreamID] === stream else { return }
        switch result {
        case .failure(let failure):
            if failure.isConnectFailure, self.retriedConnect(stream) { return }
            stream.phase = .answered
            stream.record.upstreamTransportFailureReason = failure.transportFailureReason
            self.respondLocally(stream, status: 503, flag: failure.responseFlag, body: failure.localReplyBody)
        case .success(let upstream):
            self.startForwarding(stream, on: upstream, frames: frames)
        }
    }

    /// Pairs `stream` with a stream on `upstream` and writes the frames that waited for it.
    private func startForwarding(
        _ stream: HTTP2RelayStream, on upstream: any HTTP2StreamUpstream, frames: [(HTTP2Frame.FramePayload, Int)]
    ) {
        stream.record.upstreamHost = upstream.remoteText
        stream.record.upstreamLocalAddress = upstream.localText
        stream.phase = .forwarding(upstream)
        self.clusterStreamStarted(stream, on: upstream)
        stream.upstreamSent = NIODeadline.now()
        upstream.open(stream, frames: frames)
        self.upstreamDirty(upstream)
        self.armRouteTimeout(stream)
    }

    /// Passes a request frame on, or keeps it until the upstream stream is open. `credit` is
    /// what the client's stream window gets back once the frame is written upstream.
    private func relayRequest(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream, credit: Int) {
        switch stream.phase {
        case .connecting(var frames):
            stream.phase = .answered
            frames.append((payload, credit))
            stream.phase = .connecting(frames)
        case .forwarding(let upstream):
            upstream.send(payload, of: stream, credit: credit)
            self.upstreamDirty(upstream)
            if stream.requestEnded { self.armRouteTimeout(stream) }
        case .answered, .done:
            break
        }
    }

    /// Request bytes reached the origin's connection: the client may send as many again.
    func clientCreditReturned(_ stream: HTTP2RelayStream, bytes: Int) {
        guard !stream.requestEnded, self.streams[stream.downstreamID] === stream,
            let increment = stream.clientCredit.handedOn(bytes)
        else { return }
        self.write(HTTP2Frame(streamID: stream.downstreamID, payload: .windowUpdate(windowSizeIncrement: increment)))
    }

    /// Stops relaying `stream` upstream (the client is gone from it): the origin's stream is reset.
    private func abandon(_ stream: HTTP2RelayStream) {
        if case .forwarding(let upstream) = stream.phase {
            upstream.reset(stream, code: .cancel)
            self.upstreamDirty(upstream)
        }
        stream.phase = .done
    }

    // MARK: response, driven by the upstream relay

    /// Passes a response frame to the client. `credit` is what the origin's stream window
    /// gets back once the client's connection has taken the frame (the header block was
    /// checked when it arrived from the origin: `HTTP2WireHandler`).
    func relayResponse(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream, credit: Int) {
        let payload = stream.responseEdits == nil ? payload : self.editedResponse(payload, of: stream)
        let frame = HTTP2Frame(streamID: stream.downstreamID, payload: payload)
        guard credit > 0, let context = self.context, case .forwarding(let upstream) = stream.phase else {
            self.write(frame)
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenSuccess { _ in
            upstream.originCreditReturned(stream, bytes: credit)
        }
        self.write(frame, promise: promise)
    }

    /// The origin sent a header block that is not valid HTTP/2 (no `:status`, a
    /// connection-specific or uppercase field, pseudo-headers in trailers); its connection
    /// has reset the origin's stream with PROTOCOL_ERROR. Envoy treats it as an upstream
    /// protocol error: 502 `UPE` while the client has no response head yet, else the client's
    /// stream is reset.
    func upstreamProtocolError(_ stream: HTTP2RelayStream) {
        guard case .forwarding = stream.phase, self.streams[stream.downstreamID] === stream else { return }
        stream.record.upstreamTransportFailureReason = "protocol_error"
        self.runtime.logger.warning("bad HTTP/2 response from upstream", metadata: ["authority": "\(stream.record.authority ?? "-")"])
        if !stream.responseStarted {
            stream.phase = .answered
            self.respondLocally(stream, status: 502, flag: .upstreamProtocolError, body: HTTP1LocalReply.resetBody(reason: "protocol error"))
        } else {
            stream.phase = .done
            stream.record.responseFlags.insert(.upstreamProtocolError)
            stream.responseEnded = true
            self.write(HTTP2Frame(streamID: stream.downstreamID, payload: .rstStream(.protocolError)))
        }
    }

    /// The origin reset the stream or its connection went away before the response ended.
    func upstreamReset(_ stream: HTTP2RelayStream, flag: ResponseFlags, reason: String) {
        guard case .forwarding = stream.phase else { return }
        if stream.responseStarted {
            stream.phase = .done
            stream.record.responseFlags.insert(flag)
            stream.responseEnded = true
            self.write(HTTP2Frame(streamID: stream.downstreamID, payload: .rstStream(.internalError)))
        } else {
            // Envoy: 503 `upstream_reset_before_response_started{remote_reset}`.
            stream.phase = .answered
            self.respondLocally(stream, status: 503, flag: flag, body: HTTP1LocalReply.resetBody(reason: reason))
        }
    }

    /// The response ended while the client is still sending the request: Envoy resets the
    /// stream with NO_ERROR so the client stops (its window would not be reopened again).
    func responseEndedBeforeRequest(_ stream: HTTP2RelayStream) {
        guard !stream.requestEnded, self.streams[stream.downstreamID] === stream else { return }
        self.write(HTTP2Frame(streamID: stream.downstreamID, payload: .rstStream(.noError)))
    }

    // MARK: writes and flushes

    private func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>? = nil) {
        guard let context = self.context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(self.wrapOutboundOut(frame), promise: promise)
        if self.batching { self.needsFlush = true } else { context.flush() }
    }

    /// `upstream` has writes to flush: now, or at the end of the current read.
    func upstreamDirty(_ upstream: any HTTP2StreamUpstream) {
        guard self.batching else {
            upstream.flush()
            return
        }
        if !upstream.dirty {
            upstream.dirty = true
            self.dirtyUpstreams.append(upstream)
        }
    }

    /// A read on this connection or an upstream one begins: writes are flushed at its end.
    func beginBatch() { self.batching = true }

    /// One flush per connection written to during the read (flushing can complete writes
    /// whose credit writes WINDOW_UPDATEs, hence the loop).
    func endBatch() {
        while self.needsFlush || !self.dirtyUpstreams.isEmpty {
            let upstreams = self.dirtyUpstreams
            self.dirtyUpstreams.removeAll(keepingCapacity: true)
            for upstream in upstreams {
                upstream.dirty = false
                upstream.flush()
            }
            if self.needsFlush {
                self.needsFlush = false
                self.context?.flush()
            }
        }
        self.batching = false
    }

    // MARK: local answers and the log line

    func respondLocally(_ stream: HTTP2RelayStream, status: Int, flag: ResponseFlags?, body: String, fields: [(String, String)] = []) {
        guard let context = self.context, !stream.responseStarted, self.streams[stream.downstreamID] === stream else { return }
        let reply = HTTP2LocalReply(status: status, body: body, grpc: stream.grpc)
        if let flag { stream.record.responseFlags.insert(flag) }
        stream.record.responseCode = reply.status
        stream.responseStarted = true
        stream.responseEnded = true
        var headers = HPACKHeaders([(":status", String(reply.status))])
        for (name, value) in reply.headers { headers.add(name: name, value: value) }
        for (name, value) in fields { headers.add(name: name, value: value) }
        headers.add(name: "date", value: HTTPDate.now())
        headers.add(name: "server", value: "sluice")
        let id = stream.downstreamID
        self.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: reply.body.isEmpty))))
        if !reply.body.isEmpty {
            let bytes = context.channel.allocator.buffer(string: reply.body)
            stream.record.bytesSent &+= UInt64(bytes.readableBytes)
            self.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(bytes), endStream: true))))
        }
        if !stream.requestEnded {
            // Envoy resets a stream whose request is still arriving once it has answered.
            self.write(HTTP2Frame(streamID: id, payload: .rstStream(.noError)))
        }
    }

    private func finish(_ stream: HTTP2RelayStream) {
        guard !stream.logged else { return }
        stream.logged = true
        stream.routeTimer?.cancel()
        stream.routeTimer = nil
        self.releaseCluster(stream)
        stream.record.duration = stream.start.millisecondsElapsed
        self.runtime.completedRequest(&stream.record, memo: &self.memo)
    }
}

/// The request fields a stream's record and decision read, the first of each, in one pass.
private struct RequestFields {
    var method: String?
    var path: String?
    var authority: String?
    var host: String?
    var userAgent: String?
    var contentType: String?
    var requestID: String?

    mutating func take(_ name: String, _ value: String) {
        switch name {
        case ":method": if method == nil { method = value }
        case ":path": if path == nil { path = value }
        case ":authority": if authority == nil { authority = value }
        case "host": if host == nil { host = value }
        case "user-agent": if userAgent == nil { userAgent = value }
        case "content-type": if contentType == nil { contentType = value }
        case "x-request-id": if requestID == nil { requestID = value }
        default: break
        }
    }
}
