import NIOCore
import SluiceCore

/// A connection's limits, the timeouts as `TimeAmount`s: converted once per configuration
/// rather than on every request.
struct ConnectionLimits {
    let headerRead: TimeAmount
    let idle: TimeAmount
    let upstream: TimeAmount
    let framer: HTTP1Limits

    init(_ limits: Limits) {
        self.headerRead = TimeAmount(limits.headerReadTimeout)
        self.idle = TimeAmount(limits.idleTimeout)
        self.upstream = TimeAmount(limits.upstreamTimeout)
        self.framer = HTTP1Limits(maxHeadBytes: limits.maxRequestHeadBytes, maxFields: limits.maxRequestHeaders)
    }
}

/// What a connection waits for, with its deadline.
enum ConnectionDeadline {
    case none
    /// The first request head (`headerReadTimeout`: 408 when it passes).
    case firstHead(NIODeadline)
    /// The next request on a kept-alive connection (`idleTimeout`: closed when it passes).
    case idle(NIODeadline)
    /// The upstream's response head (`upstreamTimeout`: 504 UT when it passes).
    case response(NIODeadline, TimeAmount)

    var instant: NIODeadline? {
        switch self {
        case .none: return nil
        case .firstHead(let at), .idle(let at), .response(let at, _): return at
        }
    }
}
