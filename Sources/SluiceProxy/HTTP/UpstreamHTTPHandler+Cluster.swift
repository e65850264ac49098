import NIOCore
import SluiceCore

// An upstream connection under a DestinationRule `connectionPool`: closed after
// maxRequestsPerConnection requests, after idleTimeout in the pool, and — while pooled — when
// a request of its cluster waits for a connection slot (the slot is freed by closing it, as
// the waiter may be on another event loop than this pool).
extension UpstreamHTTPHandler {
    /// How long it may sit idle in the pool: `http.idleTimeout`, else the pool's own.
    var maxIdle: TimeAmount {
        self.cluster?.limits.idleTimeout.map { TimeAmount($0) } ?? UpstreamPool.maxIdle
    }

    /// A request begins on it: past maxRequestsPerConnection it is closed after the response.
    func countRequest() {
        self.served += 1
        if let max = self.cluster?.limits.maxRequestsPerConnection, self.served >= max {
            self.notReusable()
        }
    }

    /// Lets the cluster close it while it is idle in this loop's pool.
    func offerSlotWhilePooled() {
        guard let cluster = self.cluster, let eventLoop = self.channel?.eventLoop else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        self.poolID = cluster.pooled(on: eventLoop) {
            let handler = bound.value
            guard handler.isPooled else { return }
            UpstreamPool.current.remove(handler)
            handler.unpooled()
            handler.close()
        }
    }
}
