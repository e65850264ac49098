import NIOCore
import SluiceCore

/// Keeps the client's EOF away from NIOHTTP1's request decoder while a CONNECT tunnel is set up.
///
/// `HTTPDecoder.decodeLast(seenEOF: true)` drops whatever it still buffers behind an upgrade
/// head — it cannot know the upgrade will complete — so a client that sends `CONNECT`, its
/// first tunnel bytes and a FIN in one go (`printf 'CONNECT …\r\n\r\nping' | nc -N`) would lose
/// those bytes: the decoder sees the EOF before the dial finishes and its removal would have
/// forwarded them. Placed in front of the decoder, this handler passes everything through
/// until `hold()`; from then on it keeps `ChannelEvent.inputClosed` back until `release()`,
/// which replays it behind the tunnel bytes and takes the handler out of the pipeline.
final class InputClosedHold: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var context: ChannelHandlerContext?
    private var holding = false
    private var held = HeldInbound()

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if self.holding, let event = event as? ChannelEvent, case .inputClosed = event {
            self.held.holdInputClosed()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// From now on an EOF waits for `release()`.
    func hold() {
        self.holding = true
    }

    /// Fires the EOF kept back, if any, through the rest of the pipeline (the tunnel's glue by
    /// now), then leaves the pipeline. Call it once the bytes that preceded the EOF have gone
    /// through: after the decoder's own (deferred) removal has forwarded what it buffered.
    func release() {
        guard let context = self.context else { return }
        self.holding = false
        if self.held.takeForReplay().inputClosed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
