import Logging
import NIOConcurrencyHelpers
import NIOCore
import SluiceCore

/// One cluster's (`outbound|port|subset|host`) DestinationRule state, shared by every event
/// loop: its circuit-breaker counters and waiting requests, its outlier detector, its
/// load-balancing position and the requests outstanding per endpoint. The decisions are
/// SluiceCore's (`ClusterCircuitBreaker`, `OutlierDetector`, `EndpointPicker`); here, one
/// lock around them and running what they return on the right event loop.
final class ClusterState: Sendable {
    /// Something run on its event loop: a waiting request's dial, or closing an idle
    /// connection (`id` names it in `idle`; a waiter's is 0).
    struct Task: Sendable {
        let id: UInt64
        let eventLoop: any EventLoop
        let run: @Sendable () -> Void

        func execute() { self.eventLoop.execute(self.run) }
    }

    private struct Mutable: Sendable {
        var breaker: ClusterCircuitBreaker<Task>
        var outlier: OutlierDetector?
        var picker: EndpointPicker
        /// Requests in flight by endpoint (`ip:port`), for LEAST_REQUEST.
        var outstanding: [String: Int] = [:]
        /// How many endpoints the last resolution gave (outlier detection's percentage base).
        var endpointCount = 1
        /// Idle pooled connections by id, with how to close one (so that a waiter gets its slot).
        var idle: [UInt64: Task] = [:]
        var nextID: UInt64 = 0
    }

    let name: String
    /// What it was built from: a reload with another policy for the cluster builds anew.
    let policy: TrafficPolicy
    let limits: ClusterLimits
    let balancer: LoadBalancerPolicy
    private let metrics: ClusterMetrics
    private let logger: Logger
    private let state: NIOLockedValueBox<Mutable>

    init(name: String, policy: TrafficPolicy, metrics: ClusterMetrics, logger: Logger) {
        self.name = name
        self.policy = policy
        self.limits = ClusterLimits(policy.connectionPool)
        self.balancer = LoadBalancerPolicy(policy.loadBalancer)
        self.metrics = metrics
        self.logger = logger
        self.state = NIOLockedValueBox(Mutable(
            breaker: ClusterCircuitBreaker(limits: self.limits),
            outlier: policy.outlierDetection.map { OutlierDetector(settings: .init($0)) },
            picker: EndpointPicker(policy: self.balancer)))
    }

    // MARK: connectionPool

    /// A request needs a new connection: `.open` (dial now), `.pending` (`dial` runs on its
    /// loop when a slot frees; an idle connection elsewhere is closed to free one) or
    /// `.overflow` (503 UO, counted).
    func openConnection(_ dial: Task) -> ClusterCircuitBreaker<Task>.ConnectionAdmission {
        let (admission, idle) = self.state.withLockedValue { state -> (ClusterCircuitBreaker<Task>.ConnectionAdmission, Task?) in
            let admission = state.breaker.openConnection(dial)
            guard admission == .pending, let key = state.idle.keys.first else { return (admission, nil) }
            return (admission, state.idle.removeValue(forKey: key))
        }
        if admission == .overflow { self.metrics.overflow(cluster: self.name, limit: .pending) }
        idle?.execute()
        return admission
    }

    /// A counted connection closed (or its dial failed): its slot goes to the next waiter.
    func connectionClosed() {
        let next = self.state.withLockedValue { $0.breaker.connectionClosed() }
        next?.execute()
    }

    /// A request waits for a connection: a connection going idle is closed instead of pooled.
    var hasWaiters: Bool {
        self.limits.maxConnections != ClusterLimits.unlimited && self.state.withLockedValue { $0.breaker.hasWaiters }
    }

    /// An idle connection was pooled: `close` (run on `eventLoop`) closes it if a request
    /// comes to wait. Returns its id for `unpooled`; 0 (not kept) when the cluster has no
    /// connection limit, so nobody ever waits.
    func pooled(on eventLoop: any EventLoop, close: @escaping @Sendable () -> Void) -> UInt64 {
        guard self.limits.maxConnections != ClusterLimits.unlimited else { return 0 }
        return self.state.withLockedValue { state in
            state.nextID += 1
            state.idle[state.nextID] = Task(id: state.nextID, eventLoop: eventLoop, run: close)
            return state.nextID
        }
    }

    /// An idle connection left the pool (reused or closed).
    func unpooled(id: UInt64) {
        guard id != 0 else { return }
        _ = self.state.withLockedValue { $0.idle.removeValue(forKey: id) }
    }

    /// A request starts: false past http2MaxRequests (counted as an overflow).
    func startRequest() -> Bool {
        let admitted = self.state.withLockedValue { $0.breaker.startRequest() }
        if !admitted { self.metrics.overflow(cluster: self.name, limit: .requests) }
        return admitted
    }

    func endRequest() {
        self.state.withLockedValue { $0.breaker.endRequest() }
    }

    /// A retry is about to be made: false past maxRetries (counted; the request is not retried).
    func startRetry() -> Bool {
        let admitted = self.state.withLockedValue { $0.breaker.startRetry() }
        if !admitted { self.metrics.overflow(cluster: self.name, limit: .retries) }
        return admitted
    }

    func endRetry() {
        self.state.withLockedValue { $0.breaker.endRetry() }
    }

    // MARK: endpoints

    /// `addresses` in the order to try them: the load balancer's pick among the endpoints not
    /// ejected first (see `EndpointPicker.order`).
    func order(_ addresses: [SocketAddress], now: NIODeadline = .now()) -> [SocketAddress] {
        guard addresses.count > 1 else {
            self.state.withLockedValue { $0.endpointCount = max(1, addresses.count) }
            return addresses
        }
        let keys = addresses.map(\.logDescription)
        let (indices, returned) = self.state.withLockedValue { state -> ([Int], [String]) in
            state.endpointCount = addresses.count
            let returned = state.outlier?.sweepIfDue(now: Self.instant(now)) ?? []
            let outlier = state.outlier
            let outstanding = state.outstanding
            let indices = state.picker.order(
                count: addresses.count,
                isEjected: { outlier?.isEjected(keys[$0]) ?? false },
                outstanding: { outstanding[keys[$0]] ?? 0 },
                random: { Int.random(in: 0..<$0) })
            return (indices, returned)
        }
        for endpoint in returned {
            self.logger.info("outlier endpoint returned to service", metadata: ["cluster": "\(self.name)", "endpoint": "\(endpoint)"])
        }
        return indices.map { addresses[$0] }
    }

    /// A request went to `endpoint` (LEAST_REQUEST counts them).
    func requestStarted(on endpoint: String) {
        guard self.balancer == .leastRequest else { return }
        self.state.withLockedValue { $0.outstanding[endpoint, default: 0] += 1 }
    }

    func requestEnded(on endpoint: String) {
        guard self.balancer == .leastRequest else { return }
        self.state.withLockedValue { state in
            let left = (state.outstanding[endpoint] ?? 1) - 1
            state.outstanding[endpoint] = left > 0 ? left : nil
        }
    }

    /// What a request to `endpoint` (`ip:port`) came to, for outlier detection: logged and
    /// counted when it ejects the endpoint.
    func record(_ outcome: OutlierDetector.Outcome, endpoint: String) {
        guard self.policy.outlierDetection != nil else { return }
        let now = Self.instant(.now())
        let ejection = self.state.withLockedValue { state in
            state.outlier?.record(outcome, endpoint: endpoint, endpointCount: state.endpointCount, now: now)
        }
        guard let ejection else { return }
        self.metrics.ejected(cluster: self.name)
        self.logger.warning(
            "outlier endpoint ejected",
            metadata: ["cluster": "\(self.name)", "endpoint": "\(endpoint)", "type": "\(ejection.kind)",
                       "ejection_ms": "\(ejection.duration.components.seconds * 1000 + ejection.duration.components.attoseconds / 1_000_000_000_000_000)"])
    }

    private static func instant(_ deadline: NIODeadline) -> Duration {
        .nanoseconds(Int64(clamping: deadline.uptimeNanoseconds))
    }
}

/// The clusters with a DestinationRule traffic policy, by name, for the process's life: a
/// cluster keeps its counters and ejections across reloads while its policy is unchanged.
final class ClusterStates: Sendable {
    private let clusters = NIOLockedValueBox<[String: ClusterState]>([:])
    let metrics: ClusterMetrics
    private let logger: Logger

    init(metrics: ClusterMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// The state of the cluster a forwarded decision goes to, nil when its DestinationRule
    /// (the route's, or the registered host's without a route) sets nothing the data path
    /// applies (no policy, or only `tls`). `route` is `decision.route`, when already read.
    func state(for decision: Decision, route: RouteSelection?) -> ClusterState? {
        let policy: ClusterPolicy
        if let route {
            guard let routed = route.trafficPolicy, let rule = route.destinationRule else { return nil }
            policy = ClusterPolicy(rule: rule, policy: routed)
        } else {
            guard let own = decision.clusterPolicy else { return nil }
            policy = own
        }
        guard policy.appliesInDataPath else { return nil }
        return self.state(for: decision.cluster, policy: policy.policy)
    }

    /// The state of `cluster` under `policy`.
    func state(for cluster: String, policy: TrafficPolicy) -> ClusterState {
        self.clusters.withLockedValue { clusters in
            if let known = clusters[cluster], known.policy == policy { return known }
            let state = ClusterState(name: cluster, policy: policy, metrics: self.metrics, logger: self.logger)
            clusters[cluster] = state
            return state
        }
    }
}
