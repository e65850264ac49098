import NIOCore
import SluiceCore

/// What an upstream connection hands the downstream proxy handler.
enum UpstreamResponsePart {
    /// A response head (interim 1xx heads included).
    case head(HTTP1Head)
    /// Body bytes as read (chunk framing included, unless de-chunking).
    case body(ByteBuffer)
    case end
}

/// The client end of an upstream HTTP/1.1 connection: frames responses with `HTTP1Framer`
/// (the bytes as read, no re-encoding), passes them to the downstream proxy handler (same
/// event loop, so a plain reference) and holds reads while the downstream cannot take more.
/// Requests are written as bytes the downstream handler already laid out.
final class UpstreamHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The downstream handler; cleared when it lets go of this connection. A read held for
    /// the previous downstream is released on every change: a pooled connection with no read
    /// outstanding would never see its next response (the request would hang until 504 UT).
    weak var downstream: HTTPProxyHandler? {
        didSet { self.resumeReading() }
    }
    /// What this connection was opened for; reused only for the same target.
    let target: UpstreamTarget
    /// The address dialled and our end of it, for the access log.
    let remote: SocketAddress
    /// `remote` and our end of the connection as the access log writes them, formatted once
    /// per connection rather than once per request.
    let remoteText: String
    private(set) var localText: String?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Request bytes sent and not flushed yet; the last buffer is held back so that it and
    /// the flush go through the pipeline as one `writeAndFlush`.
    private var unflushed = false
    /// A request's last bytes are flushed at the end of the loop tick.
    private let deferredFlush = DeferredFlush()
    private var heldBack: ByteBuffer?
    private var framer: HTTP1Framer
    /// Bytes read but not yet framed (a partial head), or read past a 101 (the tunnel's).
    private var inbound: ByteBuffer?
    /// After a 101 head: what follows is the upgraded protocol's, not HTTP.
    private(set) var switched = false
    /// True between a request being sent and its response's end.
    var busy = false
    /// False once the upstream said `Connection: close` or failed.
    var reusable = true
    /// Sitting idle in this event loop's `UpstreamPool`.
    var pooled = false

    init(target: UpstreamTarget, remote: SocketAddress, limits: HTTP1Limits) {
        self.target = target
        self.remote = remote
        self.remoteText = remote.logDescription
        self.framer = HTTP1Framer(kind: .response, limits: limits)
    }

    var channel: (any Channel)? { self.context?.channel }
    /// Still in its channel's pipeline (removed when the channel closes or becomes a tunnel).
    var isAttached: Bool { self.context != nil }
    /// The channel's writability as of its last `channelWritabilityChanged`: the downstream
    /// asks on every read, and `channel.isWritable` costs a pipeline and channel lookup.
    private var channelWritable = true
    var isWritable: Bool { self.context != nil && self.channelWritable }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.deferredFlush.attach(context)
        self.channelWritable = context.channel.isWritable
        self.localText = context.channel.localAddress?.logDescription
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.deferredFlush.attach(nil)
    }

    /// A request is about to be sent: how to frame its response, and whether it may relay
    /// chunked bytes as they are.
    func expectResponse(toHEAD: Bool, stripChunkFraming: Bool) {
        var framer = self.framer  // copied and put back, as in frame(context:)
        framer.expectResponse(toHEAD: toHEAD)
        framer.stripChunkFraming = stripChunkFraming
        self.framer = framer
    }

    /// The current response ends when the upstream closes (no length, not chunked).
    var isCloseDelimited: Bool { self.framer.isCloseDelimited }

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
        guard let downstream = self.downstream else {
            self.discardUnexpected(&buffer, context: context)
            return
        }
        while !self.switched {
            guard self.busy else {
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
                self.reusable = false
                buffer.clear()
                downstream.upstreamProtocolError(self, error: error)
                self.closeConnection(context)
                return
            }
            switch consume event {
            case .needMore:
                return
            case .head(let head):
                if head.status == 101 { self.switched = true }
                downstream.upstreamResponse(.head(consume head), from: self)
            case .body(let body):
                downstream.upstreamResponse(.body(consume body), from: self)
            case .end:
                downstream.upstreamResponse(.end, from: self)
            }
            // The downstream may have let go of this connection while handling the part.
            guard self.downstream === downstream, self.context != nil else { return }
        }
    }

    private func discardUnexpected(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        guard buffer.readableBytes > 0 else { return }
        self.reusable = false
        buffer.clear()
        self.closeConnection(context)
    }

    /// What the upstream sent behind its 101, for the tunnel.
    func takeTunnelBytes() -> ByteBuffer? {
        defer { self.inbound = nil }
        guard let inbound = self.inbound, inbound.readableBytes > 0 else { return nil }
        return inbound
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.downstream?.upstreamReadComplete(from: self)
        // As in HTTPProxyHandler.channelReadComplete: the next read, without auto-read's pass.
        self.read(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.reusable = false
        if self.pooled {
            self.pooled = false
            UpstreamPool.current.remove(self)
        }
        var framer = self.framer  // copied and put back, as in frame(context:)
        let ended = self.busy && framer.isCloseDelimited && framer.inputClosed()
        self.framer = framer
        if ended {
            // The close ends a response delimited by it.
            self.downstream?.upstreamResponse(.end, from: self)
        }
        self.downstream?.upstreamClosed(self)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // An HTTP upstream that stops sending is done with this connection.
            self.reusable = false
            self.closeConnection(context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.reusable = false
        self.closeConnection(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.channelWritable = context.channel.isWritable
        if self.channelWritable {
            self.downstream?.upstreamBecameWritable(self)
        }
        context.fireChannelWritabilityChanged()
    }

    /// The downstream can take more: replay a held read.
    func resumeReading() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    /// Sends request bytes; flushes when asked.
    func send(_ bytes: ByteBuffer, flush: Bool) {
        guard let context = self.context else { return }
        if let earlier = self.heldBack {
            self.heldBack = nil
            context.write(self.wrapOutboundOut(earlier), promise: nil)
        }
        if flush {
            self.unflushed = false
            context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
        } else {
            self.unflushed = true
            self.heldBack = bytes
        }
    }

    /// Flushes what `send` wrote, if anything: the end of a request and the end of a read
    /// both ask, and a pass through the pipeline is not free (a GET's head and its flush
    /// make one `writeAndFlush`).
    func flush() {
        guard self.unflushed else { return }
        self.unflushed = false
        self.deferredFlush.covered()
        if let last = self.heldBack {
            self.heldBack = nil
            self.context?.writeAndFlush(self.wrapOutboundOut(last), promise: nil)
        } else {
            self.context?.flush()
        }
    }

    /// As `flush`, but only the bytes go now; the flush waits for the end of the loop tick
    /// (`TickFlushes`).
    func deferFlush() {
        guard self.unflushed else { return }
        self.unflushed = false
        let last = self.heldBack
        self.heldBack = nil
        self.deferredFlush.write(last)
    }

    func close() {
        self.reusable = false
        if let context = self.context { self.closeConnection(context) }
    }

    /// Closes the connection, sending first what a deferred flush still holds.
    private func closeConnection(_ context: ChannelHandlerContext) {
        self.deferredFlush.flushNow()
        context.close(promise: nil)
    }
}

extension UpstreamHTTPHandler {
    func read(context: ChannelHandlerContext) {
        if self.downstream?.isWritable ?? true {
            context.read()
        } else {
            self.pendingRead = true
        }
    }
}
