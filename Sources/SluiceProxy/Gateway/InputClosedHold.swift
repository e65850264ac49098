import NIOCore
import SluiceCore

/// Keeps a client's EOF away from the handler behind it until that handler can take it.
///
/// The gateway's mutual-TLS listener puts it in front of NIOSSL: a client's FIN right behind
/// its last handshake flight must not reach NIOSSL while the verification callback's answer
/// is still on its way (NIOSSL would call it an EOF during the handshake). It passes
/// everything through until `hold()`; from then on it keeps `ChannelEvent.inputClosed` back
/// (in a `HeldInbound`, the shared hold-then-replay helper) until `release()`, which replays
/// it and takes the handler out of the pipeline. Only the EOF is held: bytes go on to the
/// handler behind, which keeps them itself.
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

    /// Fires the EOF kept back, if any, through the rest of the pipeline, then leaves the
    /// pipeline. Call it once the bytes that preceded the EOF have gone through the handlers
    /// behind (for NIOSSL: after it decoded the records that came with the last flight).
    func release() {
        guard let context = self.context else { return }
        self.holding = false
        if self.held.takeForReplay().inputClosed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
