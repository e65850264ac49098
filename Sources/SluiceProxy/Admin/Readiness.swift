import NIOConcurrencyHelpers

/// Whether this proxy should receive traffic, as `/healthz/ready` reports it: not while it is
/// still starting (listeners not bound yet), not once it is draining for shutdown.
public final class Readiness: Sendable {
    /// The lifecycle phases the probe distinguishes.
    public enum State: String, Sendable {
        /// Listeners not yet bound: 503.
        case starting
        /// Serving: 200.
        case ready
        /// Shutting down, connections finishing: 503, so Kubernetes stops sending new ones.
        case draining
    }

    private let box = NIOLockedValueBox(State.starting)

    /// Starts in `starting`.
    public init() {}

    /// The current phase.
    public var state: State { self.box.withLockedValue { $0 } }

    /// True only in `ready`.
    public var isReady: Bool { self.state == .ready }

    /// Listeners are up. Ignored once draining: a late "ready" must not advertise a pod that
    /// is on its way out.
    public func markReady() {
        self.box.withLockedValue { state in
            if state == .starting { state = .ready }
        }
    }

    /// Shutdown began; final.
    public func markDraining() {
        self.box.withLockedValue { $0 = .draining }
    }
}
