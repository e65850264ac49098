import NIOCore
import NIOHTTP2

/// The upstream half of one proxied HTTP/2 stream: hands what the origin sends to the
/// downstream stream's handler, and holds reads while the downstream stream cannot take more
/// (so the origin's window is not reopened faster than the client drains it).
final class HTTP2UpstreamStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private weak var downstream: HTTP2StreamProxyHandler?
    private var context: ChannelHandlerContext?
    private var reads = ReadHold()
    /// A frame went out: the stream exists at the origin (before that it has no id there).
    private var opened = false

    init(downstream: HTTP2StreamProxyHandler) {
        self.downstream = downstream
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.downstream?.upstreamPayload(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.downstream?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        self.downstream?.upstreamClosed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.downstream?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.reads.admit() { context.read() }
    }

    // MARK: driven by the downstream half

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func send(_ payload: HTTP2Frame.FramePayload) {
        self.opened = true
        self.context?.write(self.wrapOutboundOut(payload), promise: nil)
    }

    func flush() { self.context?.flush() }

    /// Stops (or resumes) reading the origin's frames.
    func hold(_ held: Bool) {
        if self.reads.hold(held), let context = self.context { context.read() }
    }

    /// Ends the upstream stream with RST_STREAM `code` (the client reset its side).
    func reset(_ code: HTTP2ErrorCode) {
        guard let context = self.context else { return }
        // A stream that never sent HEADERS is idle at the origin: resetting it there would be
        // a protocol error, so it is only closed here.
        if self.opened { context.writeAndFlush(self.wrapOutboundOut(.rstStream(code)), promise: nil) }
        context.close(promise: nil)
    }
}
