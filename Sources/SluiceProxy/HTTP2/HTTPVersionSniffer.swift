import NIOCore
import SluiceCore

/// On a listener that only speaks HTTP (the gateway's HTTP listener): waits for enough of the
/// client's first bytes to tell the HTTP/2 preface from an HTTP/1 request, installs the
/// matching proxy after itself, replays what it read and leaves.
final class HTTPVersionSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private var buffered: ByteBuffer?
    private var inputClosed = false
    private var timeout: Scheduled<Void>?
    private var handedOff = false

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that says nothing, or stops inside the preface, is left to the HTTP/1
        // handler and its own deadlines, never held here without one.
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timeout = context.eventLoop.scheduleTask(in: .init(self.runtime.config.limits.detectionTimeout)) {
            let (sniffer, context) = loopBound.value
            sniffer.handOff(context: context, http2: false)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        if self.buffered == nil {
            self.buffered = chunk
        } else {
            self.buffered?.writeBuffer(&chunk)
        }
        guard let buffered = self.buffered else { return }
        switch HTTP2Preface.match(buffered) {
        case .partial: return
        case .complete: self.handOff(context: context, http2: true)
        case .mismatch: self.handOff(context: context, http2: false)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard (self.buffered?.readableBytes ?? 0) > 0 else {
            context.close(promise: nil)
            return
        }
        self.inputClosed = true
        self.handOff(context: context, http2: false)
    }

    private func handOff(context: ChannelHandlerContext, http2: Bool) {
        guard !self.handedOff else { return }
        self.handedOff = true
        self.timeout?.cancel()
        do {
            if http2 {
                self.runtime.metrics.sniffed(.http2)
                try HTTP2ServerPipeline.install(on: context.channel, after: self, runtime: self.runtime, connection: self.connection)
            } else {
                try HTTPProxyPipeline.install(on: context.channel, after: self, runtime: self.runtime, connection: self.connection)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if let rest = self.buffered {
            self.buffered = nil
            context.fireChannelRead(self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        if self.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
