import NIOConcurrencyHelpers
package import NIOCore

/// Sent down every open downstream connection when draining starts: HTTP connections
/// close once their current exchange is done (idle ones at once); tunnels keep going until
/// the drain period ends.
struct DrainEvent: Sendable {}

/// A connection refused because `limits.maxConnections` were open.
struct ConnectionLimitReached: Error, CustomStringConvertible {
    let limit: Int
    var description: String { "limits.maxConnections (\(limit)) reached: connection refused" }
}

/// The downstream connections open right now, so a graceful shutdown can tell them to
/// finish and wait for them.
package final class ConnectionTracker: Sendable {
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    /// Remembers `channel` until it closes; `false` (and nothing remembered) when `limit`
    /// connections are already open, so the caller refuses it.
    func track(_ channel: any Channel, limit: Int) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = self.open.withLockedValue { open -> Bool in
            guard open.count < limit else { return false }
            open[id] = channel
            return true
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { _ in
            self.open.withLockedValue { _ = $0.removeValue(forKey: id) }
        }
        return true
    }

    /// Tracks `channel`, or logs and throws when the connection limit is reached.
    package func admit(_ channel: any Channel, runtime: ProxyRuntime) throws {
        let limit = runtime.config.limits.maxConnections
        guard self.track(channel, limit: limit) else {
            runtime.logger.warning("\(ConnectionLimitReached(limit: limit)) from \(channel.remoteAddress?.logDescription ?? "-")")
            throw ConnectionLimitReached(limit: limit)
        }
    }

    /// How many are open.
    var count: Int { self.open.withLockedValue { $0.count } }

    /// Tells every open connection that draining has started.
    func broadcastDrain() {
        for channel in self.open.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
    }

    /// Waits until every connection has closed or `deadline` passes; returns how many remain.
    func waitUntilClosed(deadline: ContinuousClock.Instant) async -> Int {
        while self.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return self.count
    }
}
