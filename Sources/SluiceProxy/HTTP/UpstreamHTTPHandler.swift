import NIOCore
import NIOHTTP1
import SluiceCore

/// The client end of an upstream HTTP/1.1 connection: passes response parts to the
/// downstream proxy handler (same event loop, so a plain reference) and holds reads while
/// the downstream cannot take more.
final class UpstreamHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

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
    private(set) var localAddress: SocketAddress?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// True between a request being sent and its response's end.
    var busy = false
    /// False once the upstream said `Connection: close` or failed.
    var reusable = true
    /// Sitting idle in this event loop's `UpstreamPool`.
    var pooled = false

    init(target: UpstreamTarget, remote: SocketAddress) {
        self.target = target
        self.remote = remote
    }

    var channel: (any Channel)? { self.context?.channel }
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.localAddress = context.channel.localAddress
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.downstream?.upstreamResponse(Self.unwrapInboundIn(data), from: self)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.downstream?.upstreamReadComplete(from: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.reusable = false
        if self.pooled {
            self.pooled = false
            UpstreamPool.current.remove(self)
        }
        self.downstream?.upstreamClosed(self)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            // An HTTP upstream that stops sending is done with this connection.
            self.reusable = false
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.reusable = false
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.downstream?.upstreamBecameWritable(self)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.downstream?.isWritable ?? true {
            context.read()
        } else {
            self.pendingRead = true
        }
    }

    /// The downstream can take more: replay a held read.
    func resumeReading() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    /// Sends one request part; flushes when asked.
    func send(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context = self.context else { return }
        if flush {
            context.writeAndFlush(Self.wrapOutboundOut(part), promise: nil)
        } else {
            context.write(Self.wrapOutboundOut(part), promise: nil)
        }
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        self.reusable = false
        self.context?.close(promise: nil)
    }
}
