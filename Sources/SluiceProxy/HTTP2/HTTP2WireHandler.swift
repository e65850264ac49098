import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// Sluice's HTTP/2 connection codec, server or client side, in place of NIOHTTP2Handler:
/// bytes in, `HTTP2Frame` values to the relay; the relay's `HTTP2Frame` values out, bytes.
/// Built on the pure parts in SluiceCore/HTTP2Wire (frame reader and writer, stream table,
/// flow windows, outbound DATA queue, event rates, the static HPACK encoder); NIOHPACK's
/// `HPACKDecoder` decodes field blocks, each checked once (`HTTP2HeaderBlockCheck`).
///
/// It hands the relay the HEADERS, DATA, RST_STREAM and GOAWAY frames it reads (NIOHTTP2's
/// `HTTP2Frame` values, as NIOHTTP2Handler did) and calls `events` (`HTTP2WireEvents`) when a
/// stream ends either way and when the connection's inbound window is half used (the relay
/// reopens it). The
/// protocol itself stays here: preface, SETTINGS and their ACKs, PING ACKs, stream states and
/// SETTINGS_MAX_CONCURRENT_STREAMS (refusing the peer's extra streams; on the client side
/// holding ours until a slot frees), both flow-control directions (DATA waits for the peer's
/// windows; a write's promise completes once its bytes went out), and every `HTTP2Limits`
/// bound: header-list size, CONTINUATION floods, empty DATA frames, control-frame rate,
/// rapid reset, buffered control frames, window overflow. Protocol errors follow RFC 9113
/// §5.4: RST_STREAM for a stream error, GOAWAY and close for a connection error.
final class HTTP2WireHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = ByteBuffer

    enum Mode { case server, client }

    /// One active stream's state beyond the table's.
    struct Stream {
        /// What the peer may still send on it.
        var inbound: HTTP2FlowWindow
        /// Body bytes the peer still announces by `content-length`.
        var contentLength: Int?
        /// Client side: the response's final head came (later blocks are trailers); server
        /// side: always (the request head opened the stream).
        var headReceived: Bool
        /// Client side: a HEAD request, whose response has no body whatever its content-length.
        var isHeadRequest = false
        /// Bytes queued and written to the wire, for the promises of queued DATA.
        var queued = 0
        var written = 0
        var promises: [(end: Int, promise: EventLoopPromise<Void>)] = []
        /// Trailers waiting for the DATA queued before them.
        var trailers: (block: ByteBuffer, promise: EventLoopPromise<Void>?)?
    }

    let mode: Mode
    let limits: HTTP2Limits
    var reader: HTTP2FrameReader
    var decoder: HPACKDecoder
    var table: HTTP2StreamTable
    var outbound = HTTP2OutboundData()
    var connectionInbound = HTTP2FlowWindow(size: HTTP2WireConstants.defaultInitialWindowSize, streamID: 0)
    var streams: [UInt32: Stream] = [:]
    var resets: HTTP2EventRate
    var controlFrames: HTTP2EventRate
    /// Client side: streams the relay opened past the peer's SETTINGS_MAX_CONCURRENT_STREAMS,
    /// in order, with their frames.
    var held: [UInt32: [(HTTP2Frame, EventLoopPromise<Void>?)]] = [:]
    var heldOrder: [UInt32] = []

    var context: ChannelHandlerContext?
    /// The relay after this handler (a strong reference: the relay holds none back).
    var events: (any HTTP2WireEvents)?
    var inboundBytes = ByteBuffer()
    var pendingOut = ByteBuffer()
    /// An empty buffer to park in `pendingOut` while it is written through a local copy.
    let emptyBuffer = ByteBuffer()
    var pendingPromises: [EventLoopPromise<Void>] = []
    var prefaceReceived: Bool
    var peerSettingsReceived = false
    var ourSettingsAcked = false
    var peerMaxFrameSize = HTTP2WireConstants.defaultMaxFrameSize
    var emptyDataRun = 0
    var bufferedControlFrames = 0
    var goAwayReceived = false
    var closed = false

    init(mode: Mode, limits: HTTP2Limits) {
        self.mode = mode
        self.limits = limits
        self.reader = HTTP2FrameReader(maxContinuationFrames: limits.maxSequentialContinuationFrames)
        self.decoder = HPACKDecoder(
            allocator: ByteBufferAllocator(), maxDynamicTableSize: HPACKDecoder.maxDynamicTableSize,
            maxHeaderListSize: limits.maxHeaderListSize)
        self.table = HTTP2StreamTable(isServer: mode == .server, maxConcurrentRemote: mode == .server ? limits.maxConcurrentStreams : 0)
        self.resets = HTTP2EventRate(maximum: limits.maxResetsPerWindow, windowSeconds: limits.resetWindowSeconds)
        self.controlFrames = HTTP2EventRate(maximum: limits.maxControlFramesPerWindow, windowSeconds: limits.controlWindowSeconds)
        self.prefaceReceived = mode == .client
    }

    /// The settings announced: what the relay's windows and the limits say.
    private var initialSettings: [HTTP2WireSetting] {
        switch mode {
        case .server:
            return [
                HTTP2WireSetting(HTTP2SettingID.maxConcurrentStreams, UInt32(clamping: limits.maxConcurrentStreams)),
                HTTP2WireSetting(HTTP2SettingID.maxHeaderListSize, UInt32(clamping: limits.maxHeaderListSize)),
                HTTP2WireSetting(HTTP2SettingID.initialWindowSize, UInt32(clamping: limits.initialWindowSize)),
            ]
        case .client:
            return [
                HTTP2WireSetting(HTTP2SettingID.enablePush, 0),
                HTTP2WireSetting(HTTP2SettingID.initialWindowSize, UInt32(clamping: limits.initialWindowSize)),
            ]
        }
    }

    /// A new stream's inbound window: ours once the peer acknowledged our SETTINGS, until
    /// then at least the protocol's default (RFC 9113 §6.9.2).
    var localInitialWindow: Int {
        ourSettingsAcked ? limits.initialWindowSize : max(limits.initialWindowSize, HTTP2WireConstants.defaultInitialWindowSize)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.pendingOut = context.channel.allocator.buffer(capacity: 1024)
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private var started = false

    /// Our preface (client side) and SETTINGS.
    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if mode == .client { pendingOut.writeBytes(HTTP2Preface.bytes) }
        HTTP2FrameWriter.writeSettings(initialSettings, to: &pendingOut)
        flushPending(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failAllPending(ChannelError.ioOnClosedChannel)
        self.context = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { bufferedControlFrames = 0 }
        context.fireChannelWritabilityChanged()
    }

    // MARK: bytes in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var bytes = unwrapInboundIn(data)
        if inboundBytes.readableBytes == 0 {
            inboundBytes = bytes
        } else {
            inboundBytes.writeBuffer(&bytes)
        }
        if !prefaceReceived {
            switch HTTP2Preface.match(inboundBytes) {
            case .partial: return
            case .mismatch:
                closed = true
                context.close(promise: nil)
                return
            case .complete:
                inboundBytes.moveReaderIndex(forwardBy: HTTP2Preface.bytes.count)
                prefaceReceived = true
            }
        }
        readFrames(context)
        if inboundBytes.readableBytes == 0 { inboundBytes = emptyBuffer }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        if pendingOut.readableBytes > 0, self.context != nil { flushPending(context) }
    }

    private func readFrames(_ context: ChannelHandlerContext) {
        while !closed {
            do {
                guard let frame = try reader.next(&inboundBytes) else { return }
                try handle(frame, context)
            } catch {
                protocolError(error, context)
            }
        }
    }

    /// RFC 9113 §5.4: a stream error resets the stream, a connection error ends the connection.
    func protocolError(_ error: HTTP2WireError, _ context: ChannelHandlerContext) {
        guard !error.isConnectionError else {
            connectionError(error.code, context)
            return
        }
        let wasActive = streams[error.streamID] != nil
        table.sentReset(streamID: error.streamID)
        HTTP2FrameWriter.writeRSTStream(streamID: error.streamID, code: error.code, to: &pendingOut)
        if wasActive { dropStream(error.streamID, reason: HTTP2ErrorCode(networkCode: Int(error.code.rawValue))) }
    }

    /// GOAWAY with `code`, and the connection closes.
    func connectionError(_ code: HTTP2WireErrorCode, _ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        HTTP2FrameWriter.writeGoAway(lastStreamID: table.lastRemoteStreamID, code: code, debugData: nil, to: &pendingOut)
        flushPending(context)
        context.close(promise: nil)
    }

    // MARK: the relay's interface

    func fire(_ streamID: UInt32, _ payload: HTTP2Frame.FramePayload, _ context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(HTTP2Frame(streamID: HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), payload: payload)))
    }

    /// The stream left the table: its queued output is dropped and the relay told.
    func dropStream(_ streamID: UInt32, reason: HTTP2ErrorCode?) {
        outbound.close(streamID: streamID)
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        let error = NIOHTTP2Errors.streamClosed(streamID: HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), errorCode: reason ?? .streamClosed)
        for (_, promise) in stream.promises { promise.fail(error) }
        stream.trailers?.promise?.fail(error)
        events?.streamClosed(HTTP2StreamID(Int32(truncatingIfNeeded: streamID)), reason: reason)
        if mode == .client { releaseHeld() }
    }

    /// The stream ended both ways (END_STREAM sent and received).
    func closeIfDone(_ streamID: UInt32) {
        guard table.state(of: streamID) == nil else { return }
        dropStream(streamID, reason: nil)
    }

    private func failAllPending(_ error: any Error) {
        for stream in streams.values {
            for (_, promise) in stream.promises { promise.fail(error) }
            stream.trailers?.promise?.fail(error)
        }
        for frames in held.values { for (_, promise) in frames { promise?.fail(error) } }
        held = [:]
        heldOrder = []
        let promises = pendingPromises
        pendingPromises = []
        for promise in promises { promise.fail(error) }
        streams = [:]
    }

    /// Writes what was encoded since the last flush, with the promises of its frames.
    func flushPending(_ context: ChannelHandlerContext) {
        guard pendingOut.readableBytes > 0 else {
            let promises = pendingPromises
            pendingPromises.removeAll(keepingCapacity: true)
            for promise in promises { promise.succeed() }
            context.flush()
            return
        }
        let bytes = pendingOut
        pendingOut = context.channel.allocator.buffer(capacity: 1024)
        let promises = pendingPromises
        pendingPromises.removeAll(keepingCapacity: true)
        switch promises.count {
        case 0:
            context.write(wrapOutboundOut(bytes), promise: nil)
        case 1:
            context.write(wrapOutboundOut(bytes), promise: promises[0])
        default:
            let all = context.eventLoop.makePromise(of: Void.self)
            for promise in promises { all.futureResult.cascade(to: promise) }
            context.write(wrapOutboundOut(bytes), promise: all)
        }
        context.flush()
    }

    /// A control frame of ours was queued: a peer that makes us queue too many while it does
    /// not read is cut off (HTTP2Limits.maxBufferedControlFrames).
    func queuedControlFrame(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable else { return }
        bufferedControlFrames += 1
        if bufferedControlFrames > limits.maxBufferedControlFrames { connectionError(.enhanceYourCalm, context) }
    }
}
