import NIOCore
import SluiceCore

/// The client end of an upstream HTTP/1.1 connection: frames responses with `HTTP1Framer`
/// (the bytes as read, no re-encoding), passes them to its sink, the downstream proxy handler
/// (same event loop, so a plain reference), and holds reads while the sink cannot take more.
/// Requests are written as bytes the downstream handler already laid out.
final class UpstreamHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler, HTTPUpstream {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Where responses go; cleared when the downstream lets go of this connection. A read held
    /// for the previous sink is released on every change: a pooled connection with no read
    /// outstanding would never see its next response (the request would hang until 504 UT).
    private weak var sink: (any HTTPUpstreamSink)? {
        didSet { self.resumeReading() }
    }
    /// What it was dialled for (its target) and opened with (its TLS): what the pool keys it by.
    let poolKey: UpstreamPoolKey
    var target: UpstreamTarget { self.poolKey.target }
    var tls: UpstreamTLS? { self.poolKey.tls }
    /// The address dialled, for the access log.
    let remote: SocketAddress
    /// `remote` and our end of the connection as the access log writes them, formatted once
    /// per connection rather than once per request.
    let remoteText: String
    private(set) var localText: String?
    private var context: ChannelHandlerContext?
    /// Busy, reusable, pooled.
    private var state = UpstreamConnectionStateMachine()
    private var readHold = ReadHoldStateMachine()
    /// Request bytes out: the last buffer and the flush in one pass; a request's last bytes
    /// flushed at the end of the loop tick.
    private let writer = CoalescingWriter()
    private var framer: HTTP1Framer
    /// Bytes read but not yet framed (a partial head), or read past a 101 (the tunnel's).
    private var inbound: ByteBuffer?
    /// After a 101 head: what follows is the upgraded protocol's, not HTTP.
    private(set) var switched = false
    /// The DestinationRule cluster whose connection slot this holds (nil: none): its
    /// maxRequestsPerConnection and idleTimeout apply (UpstreamHTTPHandler+Cluster).
    var cluster: ClusterState?
    /// Requests begun on it.
    var served = 0
    /// Its id in the cluster's list of idle connections while pooled.
    var poolID: UInt64 = 0

    init(target: UpstreamTarget, tls: UpstreamTLS?, remote: SocketAddress, limits: HTTP1Limits) {
        self.poolKey = UpstreamPoolKey(target: target, tls: tls)
        self.remote = remote
        self.remoteText = remote.logDescription
        self.framer = HTTP1Framer(kind: .response, limits: limits)
    }

    var channel: (any Channel)? { self.context?.channel }
    /// The channel's writability as of its last `channelWritabilityChanged`: the downstream
    /// asks on every read, and `channel.isWritable` costs a pipeline and channel lookup.
    private var channelWritable = true
    var isWritable: Bool { self.context != nil && self.channelWritable }

    // MARK: the connection's state, for the downstream and the pool

    /// Still in its channel's pipeline (removed when the channel closes or becomes a tunnel).
    var isAttached: Bool { self.context != nil }
    var isBusy: Bool { self.state.isBusy }
    var isReusable: Bool { self.state.isReusable }
    var isIdleAndReusable: Bool { self.state.isIdleAndReusable && self.context != nil }
    var isPooled: Bool { self.state.isPooled }
    /// The current response ends when the upstream closes (no length, not chunked).
    var isCloseDelimited: Bool { self.framer.isCloseDelimited }

    func beginExchange(for sink: any HTTPUpstreamSink, toHEAD: Bool, stripChunkFraming: Bool) {
        self.sink = sink
        self.state.exchangeStarted()
        if self.cluster != nil { self.countRequest() }
        var framer = self.framer  // copied and put back, as in frame(context:)
        framer.expectResponse(toHEAD: toHEAD)
        framer.stripChunkFraming = stripChunkFraming
        self.framer = framer
    }

    func responseEnded() {
        self.state.responseEnded()
    }

    func notReusable() {
        self.state.notReusable()
    }

    /// Lets go of the sink (nothing more is passed on).
    func detach() {
        self.sink = nil
    }

    func release() {
        self.sink = nil
        UpstreamPool.current.put(self)
    }

    /// Put in the pool, idle: no sink.
    func pooled() {
        self.sink = nil
        self.state.pooled()
        if self.cluster != nil { self.offerSlotWhilePooled() }
    }

    func unpooled() {
        self.state.unpooled()
        self.cluster?.unpooled(id: self.poolID)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.writer.attach(context)
        self.channelWritable = context.channel.isWritable
        self.localText = context.channel.localAddress?.logDescription
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.writer.attach(nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Taken out, appended to and put back: a non-inlined mutating call on a class property
        // makes the compiler check exclusivity at run time on every access to that property.
        var inbound = self.inbound.take()
        inbound.append(self.unwrapInboundIn(data))
        self.inbound = inbound
        self.frame(context: context)
    }

    private func frame(context: ChannelHandlerContext) {
        guard !self.switched, var buffer = self.inbound else { return }
        self.inbound = nil
        defer { if buffer.readableBytes > 0 { self.inbound = buffer } }
        guard let sink = self.sink else {
            self.discardUnexpected(&buffer, context: context)
            return
        }
        while !self.switched {
            guard self.state.isBusy else {
                // Bytes nobody asked for (past the response's end, or to an idle pooled
                // connection): the connection's framing can no longer be trusted.
                self.discardUnexpected(&buffer, context: context)
                return
            }
            let event: HTTP1Framer.Event
            do {
                // Framed on a copy put back after (both ways out), for the reason above.
                var framer = self.framer
                defer { self.framer = framer }
                event = try framer.next(&buffer)
            } catch {
                self.state.notReusable()
                buffer.clear()
                sink.upstreamProtocolError(self, error: error)
                self.closeConnection(context)
                return
            }
            switch consume event {
            case .needMore:
                return
            case .head(let head):
                if head.status == 101 { self.switched = true }
                sink.upstreamResponse(.head(consume head), from: self)
            case .body(let body):
                sink.upstreamResponse(.body(consume body), from: self)
            case .end:
                sink.upstreamResponse(.end, from: self)
            }
            // The sink may have let go of this connection while handling the part.
            guard self.sink === sink, self.context != nil else { return }
        }
    }

    private func discardUnexpected(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        guard self.state.unexpectedBytes(buffer.readableBytes) else { return }
        buffer.clear()
        self.closeConnection(context)
    }

    func takeTunnel() -> (channel: any Channel, bytes: ByteBuffer?)? {
        self.sink = nil
        let inbound = self.inbound.take()
        guard let channel = self.context?.channel else { return nil }
        return (channel, inbound.flatMap { $0.readableBytes > 0 ? $0 : nil })
    }

    func leavePipeline() {
        guard let context = self.context else { return }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.sink?.upstreamReadComplete(from: self)
        // As in HTTPProxyHandler.channelReadComplete: the next read, without auto-read's pass.
        self.read(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.state.closed() {
            UpstreamPool.current.remove(self)
            self.cluster?.unpooled(id: self.poolID)
        }
        var framer = self.framer  // copied and put back, as in frame(context:)
        let ended = self.state.isBusy && framer.isCloseDelimited && framer.inputClosed()
        self.framer = framer
        if ended {
            // The close ends a response delimited by it.
            self.sink?.upstreamResponse(.end, from: self)
        }
        self.sink?.upstreamClosed(self)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // An HTTP upstream that stops sending is done with this connection.
            self.state.notReusable()
            self.closeConnection(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.state.notReusable()
        self.closeConnection(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.channelWritable = context.channel.isWritable
        if self.channelWritable {
            self.sink?.upstreamBecameWritable(self)
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        switch self.readHold.read(held: !(self.sink?.isWritable ?? true)) {
        case .read: context.read()
        case .hold: break
        }
    }

    /// The sink can take more: replay a held read.
    func resumeReading() {
        if self.readHold.resume(held: false) {
            self.context?.read()
        }
    }

    // MARK: request bytes

    func send(_ bytes: ByteBuffer) {
        self.writer.hold(bytes)
    }

    /// Flushes what `send` wrote, if anything: the end of a request and the end of a read
    /// both ask, and a pass through the pipeline is not free.
    func flush() {
        self.writer.flush()
    }

    func flushAtEndOfTick() {
        self.writer.flushAtEndOfTick()
    }

    func startReading() {
        guard let channel = self.context?.channel else { return }
        GlueHandler.startReading(channel)
    }

    func close() {
        self.state.notReusable()
        if let context = self.context { self.closeConnection(context) }
    }

    /// Closes the connection, sending first what a deferred flush still holds.
    private func closeConnection(_ context: ChannelHandlerContext) {
        self.writer.flushNow()
        context.close(promise: nil)
    }
}
