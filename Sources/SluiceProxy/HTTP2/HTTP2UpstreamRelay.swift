import NIOCore
import NIOHTTP2
import SluiceCore

/// The origin side of a frame relay: one HTTP/2 client connection (h2c, or TLS with ALPN
/// `h2`) carrying streams to one target, shared by the client connections of its event loop
/// (`HTTP2UpstreamPool`). Opens a stream per relayed client stream (odd ids in the order
/// their HEADERS go out; the codec holds those past the origin's MAX_CONCURRENT_STREAMS and
/// DATA past its windows), hands the origin's frames to each stream's downstream relay, and
/// reopens the origin's windows for bytes the client has taken.
final class HTTP2UpstreamRelay: ChannelInboundHandler, HTTP2WireEvents {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let connection: UpstreamConnection
    /// The stream and connection windows announced to the origin.
    let window: Int
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2RelayStream] = [:]
    private var nextStreamID: Int32 = 1
    /// GOAWAY received, stream ids used up, or `maxStreams` opened: no new streams go here.
    private var draining = false
    /// DestinationRule `maxRequestsPerConnection`: streams this connection may carry in all.
    private let maxStreams: Int?
    private var opened = 0
    /// The downstream relays whose streams got frames in the current read (their writes are
    /// flushed at its end).
    private var batch: [HTTP2DownstreamRelay] = []
    /// This connection wrote during the current read (a connection WINDOW_UPDATE).
    private var wroteInRead = false
    /// When the last stream was opened (the pool closes a connection idle for long).
    private(set) var lastOpened = NIODeadline.now()
    /// Written to since the last flush (kept by the downstream relay).
    var dirty = false
    /// The origin's address and ours, as the access log writes them: formatted once for the
    /// connection, not for each stream it carries.
    private(set) lazy var remoteText: String = self.connection.remote.logDescription
    private(set) lazy var localText: String? = self.connection.channel.localAddress?.logDescription

    init(connection: UpstreamConnection, window: Int, maxStreams: Int? = nil) {
        self.connection = connection
        self.window = window
        self.maxStreams = maxStreams
    }

    /// Whether a new stream may be opened here.
    var isUsable: Bool { self.context != nil && !self.draining && self.connection.channel.isActive }

    /// No new stream goes here any more.
    var isDraining: Bool { self.draining }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    // MARK: driven by the downstream relay

    /// Opens `stream` at the origin and writes its first frames.
    func open(_ stream: HTTP2RelayStream, frames: [(HTTP2Frame.FramePayload, Int)]) {
        guard self.context != nil, self.connection.channel.isActive else {
            // Closed before this stream got here (the origin hung up right after the handshake).
            stream.downstream.upstreamReset(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
            return
        }
        let id = HTTP2StreamID(self.nextStreamID)
        if self.nextStreamID >= Int32.max - 2 { self.draining = true } else { self.nextStreamID += 2 }
        self.countOpened()
        stream.upstreamID = id
        self.streams[id] = stream
        for (payload, credit) in frames { self.send(payload, of: stream, credit: credit) }
    }

    /// Writes a request frame on `stream`'s upstream stream; once written, `credit` goes
    /// back to the client's window.
    func send(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream, credit: Int) {
        guard let context = self.context, let id = stream.upstreamID else { return }
        let frame = self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: payload))
        guard credit > 0 else {
            context.write(frame, promise: nil)
            return
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        let downstream = stream.downstream
        promise.futureResult.assumeIsolated().whenSuccess { _ in
            downstream.clientCreditReturned(stream, bytes: credit)
        }
        context.write(frame, promise: promise)
    }

    /// Response bytes reached the client's connection: the origin may send as many again.
    func originCreditReturned(_ stream: HTTP2RelayStream, bytes: Int) {
        guard !stream.responseEnded, let id = stream.upstreamID, self.streams[id] === stream,
            let increment = stream.originCredit.handedOn(bytes), let context = self.context
        else { return }
        context.write(self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        stream.downstream.upstreamDirty(self)
    }

    /// Ends `stream` here with RST_STREAM `code` (the client reset or left its side).
    func reset(_ stream: HTTP2RelayStream, code: HTTP2ErrorCode) {
        guard let id = stream.upstreamID, self.streams.removeValue(forKey: id) != nil, let context = self.context else { return }
        context.write(self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(code))), promise: nil)
    }

    func flush() { self.context?.flush() }

    // MARK: the origin's frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            guard let stream = self.streams[frame.streamID] else { return }
            self.batching(stream.downstream)
            stream.responseHeaders(headers)
            stream.downstream.relayResponse(frame.payload.relayed, of: stream, credit: 0)
        case .data(let data):
            guard let stream = self.streams[frame.streamID] else { return }
            self.batching(stream.downstream)
            stream.record.bytesSent &+= UInt64(data.data.readableBytes)
            if data.endStream { stream.responseEnded = true }
            stream.downstream.relayResponse(frame.payload.relayed, of: stream, credit: data.relayCredit)
        case .rstStream:
            guard let stream = self.streams.removeValue(forKey: frame.streamID) else { return }
            if stream.responseEnded {
                // The response is complete (a reset after it only stops the request's body).
                stream.phase = .done
            } else {
                self.batching(stream.downstream)
                stream.downstream.upstreamReset(stream, flag: .upstreamRemoteReset, reason: "remote reset")
            }
        case .goAway:
            // Streams past the last id are closed by the codec (`streamClosed`, refused).
            self.draining = true
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.endBatch(context: context)
        context.fireChannelReadComplete()
    }

    // MARK: HTTP2WireEvents, from this connection's codec

    func connectionWindowLow(remaining: Int) {
        guard let context = self.context,
            let increment = HTTP2WindowCredit.connectionIncrement(remaining: remaining, target: self.window)
        else { return }
        context.write(self.wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        self.wroteInRead = true
    }

    func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?) {
        // Closed before the response ended (GOAWAY past it, or a stream error).
        guard let stream = self.streams.removeValue(forKey: streamID), !stream.responseEnded else { return }
        self.batching(stream.downstream)
        if reason == .protocolError {
            // Our own reset of an invalid response (HTTP2WireHandler's header check).
            stream.downstream.upstreamProtocolError(stream)
        } else {
            stream.downstream.upstreamReset(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        let open = self.streams
        self.streams = [:]
        for stream in open.values where !stream.responseEnded {
            stream.downstream.upstreamReset(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The codec raises no protocol errors (it answers them on the wire): the channel's own.
        context.close(promise: nil)
    }
}

// MARK: sharing one connection among client connections

extension HTTP2UpstreamRelay {
    /// `downstream` has a frame of this read: its writes wait for the end of the read.
    private func batching(_ downstream: HTTP2DownstreamRelay) {
        guard !self.batch.contains(where: { $0 === downstream }) else { return }
        downstream.beginBatch()
        self.batch.append(downstream)
    }

    /// The read is over: one flush per client connection written to, then this one's.
    private func endBatch(context: ChannelHandlerContext) {
        let batch = self.batch
        self.batch.removeAll(keepingCapacity: true)
        for downstream in batch { downstream.endBatch() }
        if self.wroteInRead {
            self.wroteInRead = false
            context.flush()
        }
    }

    /// A stream was opened here: past `maxStreams` the connection takes no more (Envoy
    /// drains it and opens another).
    private func countOpened() {
        self.lastOpened = .now()
        self.opened += 1
        if let maxStreams = self.maxStreams, self.opened >= maxStreams { self.draining = true }
    }

    /// Closes the connection if it carries no stream (the pool's idle sweep, or a drained
    /// connection whose last stream ended).
    func closeIfIdle() {
        guard self.streams.isEmpty else { return }
        // No stream may start on it while it closes (TLS waits for the peer's close_notify).
        self.draining = true
        self.connection.channel.close(promise: nil)
    }
}
