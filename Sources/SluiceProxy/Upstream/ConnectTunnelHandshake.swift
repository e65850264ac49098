import NIOCore

/// Opens an HTTP CONNECT tunnel on a fresh connection to a forward proxy (our gateway's
/// CONNECT listener, or a stock Squid), then removes itself so the channel carries raw bytes.
///
/// The exchange (RFC 9110 §9.3.6):
///     CONNECT aliyun.com:443 HTTP/1.1\r\nHost: aliyun.com:443\r\n\r\n
///     HTTP/1.1 200 Connection established\r\n...\r\n\r\n
/// Bytes after the response head belong to the tunnel and are passed on.
final class ConnectTunnelHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A proxy's response head larger than this is not a CONNECT answer.
    static let maxResponseHead = 16 * 1024

    private let authority: String
    private let gateway: String
    private let promise: EventLoopPromise<Void>
    private var received: ByteBuffer?
    private var done = false
    private var sent = false

    init(authority: String, gateway: String, promise: EventLoopPromise<Void>) {
        self.authority = authority
        self.gateway = gateway
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.sendRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.sendRequest(context: context)
        context.fireChannelActive()
    }

    private func sendRequest(context: ChannelHandlerContext) {
        // Added to a channel that is already active, channelActive can still arrive after
        // handlerAdded: send the CONNECT once.
        guard !self.sent else { return }
        self.sent = true
        var request = context.channel.allocator.buffer(capacity: 64 + 2 * self.authority.utf8.count)
        request.writeString("CONNECT \(self.authority) HTTP/1.1\r\nHost: \(self.authority)\r\n\r\n")
        context.writeAndFlush(self.wrapOutboundOut(request), promise: nil)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        guard !self.done else {
            context.fireChannelRead(data)
            return
        }
        if self.received == nil {
            self.received = chunk
        } else {
            self.received!.writeBuffer(&chunk)
        }
        guard var buffer = self.received else { return }
        let view = buffer.readableBytesView
        guard let end = Self.headEnd(view) else {
            if buffer.readableBytes > Self.maxResponseHead {
                self.fail(context: context, status: 0)
            } else {
                context.read()
            }
            return
        }
        let headLength = end - view.startIndex
        let head = buffer.readString(length: headLength) ?? ""
        let status = Self.statusCode(head)
        guard (200..<300).contains(status) else {
            self.fail(context: context, status: status)
            return
        }
        self.done = true
        self.promise.succeed(())
        if buffer.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(buffer))
        }
        self.received = nil
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.done {
            self.done = true
            self.promise.fail(UpstreamError.connectFailed("gateway \(self.gateway) closed before answering CONNECT"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !self.done {
            self.done = true
            self.promise.fail(UpstreamError.connectFailed("gateway \(self.gateway): \(error)"))
        }
        context.close(promise: nil)
    }

    private func fail(context: ChannelHandlerContext, status: Int) {
        self.done = true
        self.promise.fail(UpstreamError.tunnelRefused(status: status, gateway: self.gateway))
        context.close(promise: nil)
    }

    /// Index just past the blank line that ends the head, if it has arrived.
    static func headEnd(_ view: ByteBufferView) -> Int? {
        var i = view.startIndex
        let end = view.endIndex
        while i + 3 < end {
            if view[i] == 13, view[i + 1] == 10, view[i + 2] == 13, view[i + 3] == 10 { return i + 4 }
            i += 1
        }
        return nil
    }

    /// The status code of `HTTP/1.x NNN reason`, or 0 when the line is not that.
    static func statusCode(_ head: String) -> Int {
        let line = head.split(separator: "\r\n", maxSplits: 1).first ?? ""
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else { return 0 }
        return code
    }
}
