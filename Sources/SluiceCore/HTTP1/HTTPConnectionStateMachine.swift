/// A downstream HTTP/1 connection's own state, apart from the exchange in flight: where the
/// framing of requests stands, whether the connection stays open, drains (closes once the
/// exchange in flight is done) or is closed to this handler, and whether its channel can take
/// more. Events in, actions out; the handler mutates it in place.
public struct HTTPConnectionStateMachine: Sendable {
    public enum Life: Sendable, Equatable {
        case open
        /// Closes once the exchange in flight is done (the app sent FIN, or shutdown).
        case draining
        /// This handler is done with the connection (closing, denied, or now a tunnel).
        case closed
    }

    /// What to do after `drain`.
    public enum DrainAction: Sendable, Equatable {
        /// Nothing in flight: close now.
        case closeNow
        /// The exchange in flight finishes first (its response still goes out).
        case afterExchange
    }

    /// What to do when an exchange is finished (logged).
    public enum FinishAction: Sendable, Equatable {
        /// The connection was already closed to this handler.
        case none
        /// Close once the response's last bytes are out.
        case close
        /// Kept alive: wait for the next request (one may be buffered already).
        case awaitNextRequest
    }

    @inlinable public var life: Life { self._life }
    @usableFromInline var _life: Life = Life.open
    /// A request head was framed and its end not yet.
    @inlinable public var requestOpen: Bool { self._requestOpen }
    @usableFromInline var _requestOpen: Bool = false
    /// Inside the framing loop: a call that comes back into it (an exchange finished while
    /// framing) returns at once.
    @inlinable public var framing: Bool { self._framing }
    @usableFromInline var _framing: Bool = false
    /// The channel's writability as of its last change (asked on every upstream read, and
    /// `channel.isWritable` costs a pipeline and channel lookup).
    @inlinable public var channelWritable: Bool { self._channelWritable }
    @usableFromInline var _channelWritable: Bool = true

    public init() {}

    @inlinable public var isClosed: Bool { self.life == .closed }
    /// Closes after the exchange in flight (true when closed too).
    @inlinable public var isDraining: Bool { self.life != .open }

    /// Enters the framing loop; false when already in it.
    @inlinable
    public mutating func startFraming() -> Bool {
        if self.framing { return false }
        self._framing = true
        return true
    }

    @inlinable
    public mutating func stopFraming() {
        self._framing = false
    }

    /// Whether the framer may take the next part: buffered bytes behind a request's end wait
    /// until its exchange is finished (a pipelined request, or a tunnel's bytes).
    @inlinable
    public func mayFrame(exchangeInFlight: Bool) -> Bool {
        !self.isClosed && (self.requestOpen || !exchangeInFlight)
    }

    @inlinable
    public mutating func requestHeadFramed() {
        self._requestOpen = true
    }

    @inlinable
    public mutating func requestEndFramed() {
        self._requestOpen = false
    }

    /// True while reading must wait for the exchange in flight: a pipelined request is
    /// buffered behind it (`bufferedBytes`), or its upstream cannot take bytes yet
    /// (`upstreamHolds`: being dialled, or not writable).
    @inlinable
    public func isReadHeld(exchangeInFlight: Bool, bufferedBytes: Int, upstreamHolds: Bool) -> Bool {
        guard exchangeInFlight else { return false }
        if !self.requestOpen && bufferedBytes > 0 { return true }
        return upstreamHolds
    }

    /// The channel's writability changed; true when it became writable (held upstream reads
    /// may resume).
    @inlinable
    public mutating func writabilityChanged(_ writable: Bool) -> Bool {
        self._channelWritable = writable
        return writable
    }

    /// The app sent FIN, or the proxy shuts down.
    public mutating func drain(exchangeInFlight: Bool) -> DrainAction {
        if self.life == .open { self._life = .draining }
        return exchangeInFlight ? .afterExchange : .closeNow
    }

    /// The handler is done with the connection (it closes it, or hands it to a tunnel).
    @inlinable
    public mutating func closed() {
        self._life = .closed
    }

    /// An exchange was finished; `closeAfter`: its response (or request) ends the connection.
    @inlinable
    public mutating func exchangeFinished(closeAfter: Bool) -> FinishAction {
        switch self.life {
        case .closed:
            return .none
        case .draining:
            self._life = .closed
            return .close
        case .open:
            if closeAfter {
                self._life = .closed
                return .close
            }
            return .awaitNextRequest
        }
    }
}
