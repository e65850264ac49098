import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Logs errors a listening socket reports, such as `accept` failing with EMFILE when the
/// process is out of file descriptors, at most once a second. The `AcceptBackoffHandler` in
/// front of it (`PerLoopListener.backoff`: a second on EMFILE, ENFILE, ENOBUFS, ENOMEM) stops
/// accepting for a moment and retries, so the proxy sheds new connections and recovers by
/// itself; this makes that visible to the operator.
final class AcceptErrorLogger: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel

    private let logger: Logger
    private let last = NIOLockedValueBox<NIODeadline?>(nil)

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = NIODeadline.now()
        let due = self.last.withLockedValue { last -> Bool in
            if let previous = last, now - previous < .seconds(1) { return false }
            last = now
            return true
        }
        if due {
            self.logger.warning(
                "listener \(context.channel.localAddress?.logDescription ?? "-"): \(error); shedding new connections until it clears"
            )
        }
        context.fireErrorCaught(error)
    }
}
