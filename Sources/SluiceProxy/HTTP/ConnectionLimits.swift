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
