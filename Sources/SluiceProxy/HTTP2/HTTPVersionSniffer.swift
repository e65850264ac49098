import NIOCore
import SluiceCore

/// On a listener that only speaks HTTP (the gateway's HTTP listener): waits for enough of the
/// client's first bytes to tell the HTTP/2 preface from an HTTP/1 request, installs the
/// matching proxy after itself, replays what it read (kept in `HeldInbound`, as the sniffer
/// and the tunnels keep theirs) and leaves.
final class HTTPVersionSniffer: ChannelInboundHandler, RemovableChannelHandler, LoopTimerHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private var held = HeldInbound()
    /// The detection timer, on the loop's `LoopTimers` (as SniffHandler's: no NIO task per
    /// accepted connection).
    private var timeout: LoopTimer?
    private var handedOff = false
    /// Set while in the pipeline, for the timer.
    private var context: ChannelHandlerContext?

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that says nothing, or stops inside the preface, is left to the HTTP/1
        // handler and its own deadlines, never held here without one.
        self.context = context
        let loop = context.eventLoop
        self.timeout = LoopTimers.on(loop).schedule(at: loop.now + TimeAmount(self.runtime.config.limits.detectionTimeout), self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
        self.timeout = nil
        self.context = nil
    }

    func loopTimerFired() {
        self.timeout = nil
        guard let context = self.context else { return }
        self.handOff(context: context, http2: false)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        self.held.append(&chunk)
        guard let buffered = self.held.bytes else { return }
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
        guard self.held.readableBytes > 0 else {
            context.close(promise: nil)
            return
        }
        self.held.holdInputClosed()
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
        let replay = self.held.takeForReplay()
        if let rest = replay.bytes {
            context.fireChannelRead(self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        if replay.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
