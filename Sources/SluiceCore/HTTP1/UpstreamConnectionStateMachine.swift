/// An upstream HTTP/1.1 connection's life as the proxy uses it: one exchange at a time, kept
/// for the next request (in the connection or in the event loop's pool) while the origin
/// allows. Events in from both ends (the downstream starting and ending exchanges, the
/// origin's framing and close, the pool), the questions the pool and the next request ask
/// out. One owner mutates it in place: the upstream connection's handler.
public struct UpstreamConnectionStateMachine: Sendable {
    /// Between a request being sent and its response's end.
    @inlinable public var isBusy: Bool { self._isBusy }
    @usableFromInline var _isBusy: Bool = false
    /// False once the origin said `Connection: close`, delimited a response by closing, switched
    /// protocols, or the connection failed or closed: never true again.
    @inlinable public var isReusable: Bool { self._isReusable }
    @usableFromInline var _isReusable: Bool = true
    /// Sitting idle in the event loop's pool.
    @inlinable public var isPooled: Bool { self._isPooled }
    @usableFromInline var _isPooled: Bool = false

    public init() {}

    /// A request is about to be sent on it.
    @inlinable
    public mutating func exchangeStarted() {
        self._isBusy = true
    }

    /// The response in flight ended (or was relayed whole, as a 101).
    @inlinable
    public mutating func responseEnded() {
        self._isBusy = false
    }

    /// The connection cannot carry another exchange.
    @inlinable
    public mutating func notReusable() {
        self._isReusable = false
    }

    /// Bytes came that no exchange asked for: true when the connection's framing can no
    /// longer be trusted (they are not an empty read) and it must close.
    @inlinable
    public mutating func unexpectedBytes(_ count: Int) -> Bool {
        guard count > 0 else { return false }
        self._isReusable = false
        return true
    }

    /// May be kept for another exchange (its channel still open is for the caller to ask).
    @inlinable
    public var isIdleAndReusable: Bool { self.isReusable && !self.isBusy }

    /// Put in the pool.
    public mutating func pooled() {
        self._isPooled = true
    }

    /// Taken out of the pool (for an exchange, or to close).
    public mutating func unpooled() {
        self._isPooled = false
    }

    /// The connection closed: true when it sat in the pool and must be forgotten there.
    public mutating func closed() -> Bool {
        self._isReusable = false
        defer { self._isPooled = false }
        return self.isPooled
    }
}
