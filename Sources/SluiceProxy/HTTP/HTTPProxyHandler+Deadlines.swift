import Logging
import NIOCore
import SluiceCore

// HTTPProxyHandler's deadlines: the header read (408), the idle keep-alive connection
// (closed), the response (504 UT). ConnectionDeadlineStateMachine decides; this arms the one
// timer it asks for on the event loop's `LoopTimers`, whose clock (`EventLoop.now`) a test on
// an `EmbeddedEventLoop` moves with `advanceTime` instead of sleeping.
extension HTTPProxyHandler: LoopTimerHandler {
    func setDeadline(_ deadline: ConnectionDeadline, context: ChannelHandlerContext) {
        switch self.deadlines.set(deadline) {
        case .none: break
        case .arm(let at): self.armTimer(at: at, context: context)
        }
    }

    func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
        self.deadlines.timerCancelled()
    }

    /// On the loop's `LoopTimers`, not a NIO task (a promise and closures each time it is
    /// armed, at least once per connection) nor a NIO scheduled callback (~10k instructions to
    /// arm and cancel).
    private func armTimer(at: NIODeadline, context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = LoopTimers.on(context.eventLoop).schedule(at: at, self)
    }

    func loopTimerFired() {
        self.timerFired()
    }

    private func timerFired() {
        self.timer = nil
        guard let context = self.context else {
            self.deadlines.timerCancelled()
            return
        }
        switch self.deadlines.timerFired(now: context.eventLoop.now) {
        case .none:
            break
        case .arm(let at):
            self.armTimer(at: at, context: context)
        case .expired(.none):
            break
        case .expired(.idle):
            // Envoy's idle_timeout: a keep-alive connection with nothing in flight closes quietly.
            if self.exchange == nil { self.closeDownstream(context) }
        case .expired(.firstHead):
            guard self.exchange == nil else { return }
            self.runtime.logger.info("request head not received in time from \(self.connection.remoteText ?? "-")")
            let exchange = self.makeLocalExchange()
            self.respondLocally(exchange, status: .requestTimeout, flag: nil, body: "", context: context, closeAfter: true)
        case .expired(.response(_, let timeout)):
            if let exchange = self.exchange { self.upstreamTimedOut(exchange, after: timeout) }
        }
    }
}
