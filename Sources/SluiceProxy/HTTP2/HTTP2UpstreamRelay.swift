import NIOCore
import NIOHTTP2
import SluiceCore

/// The origin side of a frame relay: one h2c client connection carrying the streams of one
/// downstream connection to one target. Opens a stream per relayed client stream (odd ids
/// in the order their HEADERS go out; NIOHTTP2 holds those past the origin's
/// MAX_CONCURRENT_STREAMS and DATA past its windows), hands the origin's frames to the
/// downstream relay, and reopens the origin's windows for bytes the client has taken.
final class HTTP2UpstreamRelay: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let downstream: HTTP2DownstreamRelay
    let connection: UpstreamConnection
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2RelayStream] = [:]
    private var nextStreamID: Int32 = 1
    /// GOAWAY received, or stream ids used up: no new streams go here.
    private var draining = false
    /// Written to since the last flush (kept by the downstream relay).
    var dirty = false
    /// The origin's address and ours, as the access log writes them: formatted once for the
    /// connection, not for each stream it carries.
    private(set) lazy var remoteText: String = self.connection.remote.logDescription
    private(set) lazy var localText: String? = self.connection.channel.localAddress?.logDescription

    init(downstream: HTTP2DownstreamRelay, connection: UpstreamConnection) {
        self.downstream = downstream
        self.connection = connection
    }

    /// Whether a new stream may be opened here.
    var isUsable: Bool { self.context != nil && !self.draining && self.connection.channel.isActive }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    // MARK: driven by the downstream relay

    /// Opens `stream` at the origin and writes its first frames.
    func open(_ stream: HTTP2RelayStream, frames: [(HTTP2Frame.FramePayload, Int)]) {
        let id = HTTP2StreamID(self.nextStreamID)
        if self.nextStreamID >= Int32.max - 2 { self.draining = true } else { self.nextStreamID += 2 }
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
        let downstream = self.downstream
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
        self.downstream.upstreamDirty(self)
    }

    /// Ends `stream` here with RST_STREAM `code` (the client reset or left its side).
    func reset(_ stream: HTTP2RelayStream, code: HTTP2ErrorCode) {
        guard let id = stream.upstreamID, self.streams.removeValue(forKey: id) != nil, let context = self.context else { return }
        context.write(self.wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(code))), promise: nil)
    }

    func flush() { self.context?.flush() }

    // MARK: the origin's frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.downstream.beginBatch()
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            guard let stream = self.streams[frame.streamID] else { return }
            stream.responseHeaders(headers)
            self.downstream.relayResponse(frame.payload.relayed, of: stream, credit: 0)
        case .data(let data):
            guard let stream = self.streams[frame.streamID] else { return }
            stream.record.bytesSent &+= UInt64(data.data.readableBytes)
            if data.endStream { stream.responseEnded = true }
            self.downstream.relayResponse(frame.payload.relayed, of: stream, credit: data.relayCredit)
        case .rstStream:
            guard let stream = self.streams.removeValue(forKey: frame.streamID) else { return }
            if stream.responseEnded {
                // The response is complete (a reset after it only stops the request's body).
                stream.phase = .done
            } else {
                self.downstream.upstreamReset(stream, flag: .upstreamRemoteReset, reason: "remote reset")
            }
        case .goAway:
            // Streams past the last id are closed by NIOHTTP2 (StreamClosedEvent below).
            self.draining = true
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.downstream.endBatch()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch HTTP2RelayEvent(event) {
        case .windowUpdated(let event):
            if event.streamID == .rootStream, let remaining = event.inboundWindowSize,
                let increment = HTTP2WindowCredit.connectionIncrement(remaining: remaining, target: self.downstream.window)
            {
                context.write(self.wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
                self.downstream.upstreamDirty(self)
            }
        case .streamClosed(let event):
            // Closed before the response ended (GOAWAY past it, or a stream error).
            guard let stream = self.streams.removeValue(forKey: event.streamID), !stream.responseEnded else { return }
            self.downstream.upstreamReset(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
        case .streamCreated:
            break
        case .other:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        let open = self.streams
        self.streams = [:]
        for stream in open.values where !stream.responseEnded {
            self.downstream.upstreamReset(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError { return }
        context.close(promise: nil)
    }
}
