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

    /// Most idle connections kept per target and TLS setting, and in all, per event loop.
    static let maxPerTarget = 32
    static let maxTotal = 512
    /// An idle connection older than this is closed rather than reused: origins close idle
    /// keep-alive connections after some seconds, and a reused half-dead one costs a 503.
    static let maxIdle = TimeAmount.seconds(20)

    private struct Idle {
        let handler: UpstreamHTTPHandler
        let since: NIODeadline
    }

    /// By target and TLS setting (`UpstreamPoolKey`, hashing the enums), not a description:
    /// formatting a string per take and put showed in the new-connection profile.
    private var idle: [UpstreamPoolKey: [Idle]] = [:]
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

    /// An idle, open connection to `target` opened with `tls` (nil: plaintext) and, when
    /// given, to `remote` (the endpoint a DestinationRule's load balancer chose), if one is kept.
    /// One hash of the key per connection looked at (its list is changed in place through the
    /// dictionary's index): a take and a put ran five before, each hashing the target's host.
    func take(_ target: UpstreamTarget, tls: UpstreamTLS?, remote: SocketAddress? = nil) -> UpstreamHTTPHandler? {
        let key = UpstreamPoolKey(target: target, tls: tls)
        let now = NIODeadline.now()
        // Looked up again after each close: a close may call back into the pool.
        while let slot = self.idle.index(forKey: key) {
            // The most recently pooled connection (to `remote`, when given).
            let found: Idle?
            if let remote {
                if let index = self.idle.values[slot].lastIndex(where: { $0.handler.remote == remote }) {
                    found = self.idle.values[slot].remove(at: index)
                } else {
                    found = nil
                }
            } else {
                found = self.idle.values[slot].popLast()
            }
            if self.idle.values[slot].isEmpty { self.idle.remove(at: slot) }
            guard let found else { return nil }
            self.total -= 1
            found.handler.unpooled()
            if found.handler.channel?.isActive == true, now - found.since < found.handler.maxIdle {
                return found.handler
            }
            found.handler.close()
        }
        return nil
    }

    /// Keeps `handler` for reuse, or closes it when it cannot be reused or the pool is full.
    func put(_ handler: UpstreamHTTPHandler) {
        // A request waiting for a slot of the connection's cluster gets it when this closes.
        guard handler.isReusable, !handler.isBusy, handler.channel?.isActive == true, handler.cluster?.hasWaiters != true else {
            handler.close()
            return
        }
        let key = handler.poolKey
        let slot = self.idle.index(forKey: key)
        guard (slot.map { self.idle.values[$0].count } ?? 0) < Self.maxPerTarget, self.total < Self.maxTotal else {
            handler.close()
            return
        }
        handler.pooled()
        let entry = Idle(handler: handler, since: .now())
        if let slot, handler.cluster == nil {
            self.idle.values[slot].append(entry)
        } else {
            // Looked up again: a cluster's `pooled()` registers with the cluster, whose
            // callbacks may change the pool.
            self.idle[key, default: []].append(entry)
        }
        self.total += 1
    }

    /// Forgets a pooled connection that closed while idle.
    func remove(_ handler: UpstreamHTTPHandler) {
        let key = handler.poolKey
        guard let index = self.idle[key]?.firstIndex(where: { $0.handler === handler }) else { return }
        self.idle[key]?.remove(at: index)
        if self.idle[key]?.isEmpty == true { self.idle[key] = nil }
        self.total -= 1
    }
}
