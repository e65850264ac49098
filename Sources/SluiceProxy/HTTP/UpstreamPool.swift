import NIOCore
import NIOPosix
import SluiceCore

/// Idle upstream HTTP/1.1 connections of one event loop, kept for the next request to the
/// same target from any downstream connection on that loop — as Envoy's and HAProxy's
/// connection pools do. Without it a client that opens a connection per request costs two
/// TCP handshakes per request.
///
/// One pool per event-loop thread (a thread-specific variable), touched only from that
/// thread: no locks, and a pooled connection is always on the loop that reuses it.
final class UpstreamPool: @unchecked Sendable {
    // @unchecked: an instance is reachable only from its own thread's variable.
    private static let perThread = ThreadSpecificVariable<UpstreamPool>()

    /// Most idle connections kept per target, and in all, per event loop.
    static let maxPerTarget = 32
    static let maxTotal = 512
    /// An idle connection older than this is closed rather than reused: origins close idle
    /// keep-alive connections after some seconds, and a reused half-dead one costs a 503.
    static let maxIdle = TimeAmount.seconds(20)

    private struct Idle {
        let handler: UpstreamHTTPHandler
        let since: NIODeadline
    }

    private var idle: [String: [Idle]] = [:]
    private var total = 0

    /// How many idle connections are kept (for tests and stats).
    var idleCount: Int { self.total }

    /// The pool of the calling event-loop thread.
    static var current: UpstreamPool {
        if let pool = perThread.currentValue { return pool }
        let pool = UpstreamPool()
        perThread.currentValue = pool
        return pool
    }

    /// An idle, open connection to `target`, if one is kept.
    func take(_ target: UpstreamTarget) -> UpstreamHTTPHandler? {
        let key = target.description
        let now = NIODeadline.now()
        while var list = self.idle[key], let last = list.popLast() {
            self.idle[key] = list.isEmpty ? nil : list
            self.total -= 1
            last.handler.pooled = false
            if last.handler.channel?.isActive == true, now - last.since < Self.maxIdle {
                return last.handler
            }
            last.handler.close()
        }
        return nil
    }

    /// Keeps `handler` for reuse, or closes it when it cannot be reused or the pool is full.
    func put(_ handler: UpstreamHTTPHandler) {
        guard handler.reusable, !handler.busy, handler.channel?.isActive == true else {
            handler.close()
            return
        }
        let key = handler.target.description
        var list = self.idle[key] ?? []
        guard list.count < Self.maxPerTarget, self.total < Self.maxTotal else {
            handler.close()
            return
        }
        handler.downstream = nil
        handler.pooled = true
        list.append(Idle(handler: handler, since: .now()))
        self.idle[key] = list
        self.total += 1
    }

    /// Forgets a pooled connection that closed while idle.
    func remove(_ handler: UpstreamHTTPHandler) {
        let key = handler.target.description
        guard var list = self.idle[key], let index = list.firstIndex(where: { $0.handler === handler }) else { return }
        list.remove(at: index)
        self.idle[key] = list.isEmpty ? nil : list
        self.total -= 1
    }
}
