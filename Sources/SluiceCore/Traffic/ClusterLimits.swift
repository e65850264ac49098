/// A DestinationRule's `connectionPool` as the data path enforces it for one cluster
/// (`outbound|port|subset|host`): Envoy's circuit-breaker thresholds, which Istio writes into
/// the cluster (Istio DestinationRule reference, ConnectionPoolSettings; Envoy "Circuit
/// breaking"). An unset limit is Istio's default: 2^32-1, no limit in practice.
public struct ClusterLimits: Sendable, Equatable {
    /// Istio's default for every threshold it leaves unset (`2^32-1`).
    public static let unlimited = Int(UInt32.max)
    /// Istio's `tcp.connectTimeout` default.
    public static let defaultConnectTimeout = Duration.seconds(10)

    /// `tcp.maxConnections`: connections open to the cluster at once (across event loops).
    public var maxConnections: Int
    /// `http.http1MaxPendingRequests`: requests waiting for a connection.
    public var maxPendingRequests: Int
    /// `http.http2MaxRequests`: requests outstanding to the cluster (Envoy's `max_requests`,
    /// which applies to HTTP/1 as well).
    public var maxRequests: Int
    /// `http.maxRetries`: retries outstanding to the cluster at once.
    public var maxRetries: Int
    /// `http.maxRequestsPerConnection`: a connection is closed after this many requests; nil:
    /// no limit (Istio's 0).
    public var maxRequestsPerConnection: Int?
    /// `tcp.connectTimeout`; nil: the configured `limits.connectTimeout`.
    public var connectTimeout: Duration?
    /// `http.idleTimeout`: a pooled connection idle this long is closed; nil: the pool's own.
    public var idleTimeout: Duration?

    /// The limits of a cluster without `connectionPool`.
    public init() {
        self.maxConnections = Self.unlimited
        self.maxPendingRequests = Self.unlimited
        self.maxRequests = Self.unlimited
        self.maxRetries = Self.unlimited
    }

    /// The limits a `connectionPool` sets; unset (or 0, where Istio reads 0 as unset) fields
    /// keep Istio's defaults.
    public init(_ settings: ConnectionPoolSettings?) {
        self.init()
        guard let settings else { return }
        func positive(_ value: Int?) -> Int? { value.flatMap { $0 > 0 ? $0 : nil } }
        self.maxConnections = positive(settings.maxConnections) ?? Self.unlimited
        self.maxPendingRequests = positive(settings.http1MaxPendingRequests) ?? Self.unlimited
        self.maxRequests = positive(settings.http2MaxRequests) ?? Self.unlimited
        self.maxRetries = positive(settings.maxRetries) ?? Self.unlimited
        self.maxRequestsPerConnection = positive(settings.maxRequestsPerConnection)
        self.connectTimeout = settings.connectTimeout.flatMap { $0 > .zero ? $0 : nil }
        self.idleTimeout = settings.idleTimeout.flatMap { $0 > .zero ? $0 : nil }
    }
}

/// The counters behind a cluster's circuit breakers, and the requests waiting for a
/// connection: what Envoy's cluster keeps in `upstream_cx_active`, `upstream_rq_pending_active`,
/// `upstream_rq_active` and `upstream_rq_retries` gauges. Pure: the caller holds it under a
/// lock shared by its event loops and runs what it returns.
///
/// Envoy's rules (Circuit breaking, architecture overview):
/// - a new connection is opened only below `maxConnections`; otherwise the request waits as a
///   pending request, and a request that would make more than `maxPendingRequests` waiting
///   fails at once (`upstream_rq_pending_overflow`, 503 `UO`);
/// - a request beyond `maxRequests` outstanding fails at once (`upstream_rq_overflow`);
/// - a retry beyond `maxRetries` outstanding is not made (`upstream_rq_retry_overflow`).
public struct ClusterCircuitBreaker<Waiter>: Sendable where Waiter: Sendable {
    public let limits: ClusterLimits
    public private(set) var connections = 0
    public private(set) var requests = 0
    public private(set) var retries = 0
    private var waiting: [Waiter] = []
    private var firstWaiting = 0

    public init(limits: ClusterLimits) {
        self.limits = limits
    }

    /// Requests waiting for a connection.
    public var pending: Int { self.waiting.count - self.firstWaiting }

    /// What became of a request for a new connection.
    public enum ConnectionAdmission: Equatable {
        /// Dial now (the connection is counted; `connectionClosed` gives it back).
        case open
        /// Wait: the waiter is handed the connection slot by a later `connectionClosed`.
        case pending
        /// Too many waiting already: 503 `UO`.
        case overflow
    }

    /// A request needs a new connection.
    public mutating func openConnection(_ waiter: Waiter) -> ConnectionAdmission {
        if self.connections < self.limits.maxConnections {
            self.connections += 1
            return .open
        }
        guard self.pending < self.limits.maxPendingRequests else { return .overflow }
        self.waiting.append(waiter)
        return .pending
    }

    /// A connection the cluster counted closed (or its dial failed). Returns the waiter that
    /// takes its slot (it dials; the connection stays counted), nil when nobody waits.
    public mutating func connectionClosed() -> Waiter? {
        if let next = self.nextWaiter() { return next }
        self.connections = max(0, self.connections - 1)
        return nil
    }

    /// Whether a request waits for a connection (an idle connection is then better closed,
    /// so that its slot goes to the waiter, than kept in a pool the waiter cannot reach).
    public var hasWaiters: Bool { self.pending > 0 }

    /// Removes a waiter that gave up (its downstream went away), by identity test.
    public mutating func cancelWaiting(where matches: (Waiter) -> Bool) {
        guard let index = self.waiting[self.firstWaiting...].firstIndex(where: matches) else { return }
        self.waiting.remove(at: index)
    }

    private mutating func nextWaiter() -> Waiter? {
        guard self.firstWaiting < self.waiting.count else { return nil }
        let next = self.waiting[self.firstWaiting]
        self.firstWaiting += 1
        if self.firstWaiting == self.waiting.count {
            self.waiting.removeAll(keepingCapacity: true)
            self.firstWaiting = 0
        }
        return next
    }

    /// A request starts: false when `maxRequests` are outstanding (503 `UO`).
    public mutating func startRequest() -> Bool {
        guard self.requests < self.limits.maxRequests else { return false }
        self.requests += 1
        return true
    }

    /// A request counted by `startRequest` ended.
    public mutating func endRequest() {
        self.requests = max(0, self.requests - 1)
    }

    /// A retry is about to be made: false when `maxRetries` are outstanding (not retried).
    public mutating func startRetry() -> Bool {
        guard self.retries < self.limits.maxRetries else { return false }
        self.retries += 1
        return true
    }

    /// A retry counted by `startRetry` ended (its request finished, or tried again).
    public mutating func endRetry() {
        self.retries = max(0, self.retries - 1)
    }
}
