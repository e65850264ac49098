import NIOCore
import NIOHTTP2
import SluiceCore

// The client connection's idle timeout (`limits.idleTimeout`, Envoy's HTTP connection manager
// `idle_timeout`): a connection without an open stream for that long gets GOAWAY (NO_ERROR,
// the last stream it opened) and is closed, as an idle HTTP/1 keep-alive connection is.
extension HTTP2DownstreamRelay: LoopTimerHandler {
    /// The open streams changed: with none, the idle timer runs; with some, it does not.
    func streamsChanged() {
        if self.streams.isEmpty {
            guard self.idleTimer == nil, self.context != nil else { return }
            let limit = TimeAmount(self.runtime.config.limits.idleTimeout)
            self.idleTimer = LoopTimers.on(self.eventLoop).schedule(at: .now() + limit, self)
        } else if let timer = self.idleTimer {
            timer.cancel()
            self.idleTimer = nil
        }
    }

    func loopTimerFired() {
        self.idleTimer = nil
        guard self.streams.isEmpty, let context = self.context else { return }
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: self.lastStreamID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(self.wrapOutboundOut(goAway), promise: nil)
        context.close(promise: nil)
    }
}
