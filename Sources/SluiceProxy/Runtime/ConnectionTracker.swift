import NIOConcurrencyHelpers
import NIOCore

/// Sent down every open downstream connection when draining starts: HTTP connections
/// close once their current exchange is done (idle ones at once); tunnels keep going until
/// the drain period ends.
struct DrainEvent: Sendable {}

/// The downstream connections open right now, so a graceful shutdown can tell them to
/// finish and wait for them.
final class ConnectionTracker: Sendable {
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    /// Remembers `channel` until it closes.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        self.open.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in
            self.open.withLockedValue { _ = $0.removeValue(forKey: id) }
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
