/// Passive health checking of one cluster's endpoints, as Envoy's outlier detector does it for
/// Istio's `outlierDetection` (Envoy "Outlier detection" architecture overview and
/// outlier_detection.proto; Istio DestinationRule reference, OutlierDetection):
///
/// - `consecutive5xxErrors` (Istio's default 5; 0 disables): that many 5xx answers or
///   connect failures in a row eject the endpoint;
/// - `consecutiveGatewayErrors` (disabled unless set): that many 502, 503 or 504 answers or
///   connect failures in a row eject it;
/// - an ejection lasts `baseEjectionTime` (30s) times the number of times the endpoint was
///   ejected, at most Envoy's `max_ejection_time` (300s); it ends at the first `interval`
///   sweep (10s) after that time;
/// - an endpoint is ejected only while the ejected share is below `maxEjectionPercent` (10):
///   Envoy compares the share *before* this ejection, so one endpoint can always be ejected.
///
/// Pure: the caller passes the time (any monotonic origin) and runs sweeps lazily, on the
/// next event after each `interval` tick, which un-ejects as Envoy's timer would.
public struct OutlierDetector: Sendable {
    /// The settings with Istio's defaults filled in.
    public struct Settings: Sendable, Equatable {
        public var consecutive5xx: Int
        public var consecutiveGateway: Int
        public var interval: Duration
        public var baseEjectionTime: Duration
        public var maxEjectionPercent: Int
        /// Envoy's `max_ejection_time` default (Istio does not set it).
        public var maxEjectionTime: Duration = .seconds(300)

        public init(_ settings: OutlierDetectionSettings) {
            self.consecutive5xx = settings.consecutive5xxErrors ?? 5
            self.consecutiveGateway = settings.consecutiveGatewayErrors ?? 0
            self.interval = settings.interval.flatMap { $0 > .zero ? $0 : nil } ?? .seconds(10)
            self.baseEjectionTime = settings.baseEjectionTime.flatMap { $0 > .zero ? $0 : nil } ?? .seconds(30)
            self.maxEjectionPercent = min(100, max(0, settings.maxEjectionPercent ?? 10))
        }
    }

    /// What one request (or connection attempt) to an endpoint came to.
    public enum Outcome: Sendable, Equatable {
        /// A response with this status.
        case status(Int)
        /// No connection could be made (refused, timed out): a 503 to Envoy's detector.
        case connectFailure
    }

    /// An ejection, for the log and the metric.
    public struct Ejection: Sendable, Equatable {
        public var endpoint: String
        /// `consecutive_5xx` or `consecutive_gateway_failure`, Envoy's ejection types.
        public var kind: String
        /// How long the endpoint stays out (base × ejections, capped).
        public var duration: Duration

        public init(endpoint: String, kind: String, duration: Duration) {
            self.endpoint = endpoint
            self.kind = kind
            self.duration = duration
        }
    }

    private struct Host {
        var consecutive5xx = 0
        var consecutiveGateway = 0
        /// When the current ejection began; nil when the endpoint is in service.
        var ejectedAt: Duration?
        var ejections = 0
    }

    public let settings: Settings
    private var hosts: [String: Host] = [:]
    private var nextSweep: Duration?

    public init(settings: Settings) {
        self.settings = settings
    }

    /// How many endpoints are ejected now.
    public var ejectedCount: Int { self.hosts.values.reduce(0) { $0 + ($1.ejectedAt == nil ? 0 : 1) } }

    /// Whether `endpoint` is out of the load-balancing set.
    public func isEjected(_ endpoint: String) -> Bool { self.hosts[endpoint]?.ejectedAt != nil }

    /// Records what a request to `endpoint` (one of `endpointCount` in the cluster) came to;
    /// returns the ejection it caused, if any.
    public mutating func record(_ outcome: Outcome, endpoint: String, endpointCount: Int, now: Duration) -> Ejection? {
        self.sweepIfDue(now: now)
        var host = self.hosts[endpoint] ?? Host()
        let (is5xx, isGateway): (Bool, Bool)
        switch outcome {
        case .connectFailure: (is5xx, isGateway) = (true, true)
        case .status(let status): (is5xx, isGateway) = (status >= 500 && status <= 599, [502, 503, 504].contains(status))
        }
        host.consecutive5xx = is5xx ? host.consecutive5xx + 1 : 0
        host.consecutiveGateway = isGateway ? host.consecutiveGateway + 1 : 0
        var kind: String?
        if self.settings.consecutiveGateway > 0, host.consecutiveGateway >= self.settings.consecutiveGateway {
            kind = "consecutive_gateway_failure"
        } else if self.settings.consecutive5xx > 0, host.consecutive5xx >= self.settings.consecutive5xx {
            kind = "consecutive_5xx"
        }
        var ejection: Ejection?
        if let kind, host.ejectedAt == nil {
            // Envoy resets the counters that fired, ejected or not (the next run starts anew).
            host.consecutive5xx = 0
            host.consecutiveGateway = 0
            let total = max(endpointCount, self.hosts.count + (self.hosts[endpoint] == nil ? 1 : 0))
            let ejectedShare = 100.0 * Double(self.ejectedCount) / Double(max(total, 1))
            if ejectedShare < Double(self.settings.maxEjectionPercent) {
                host.ejections += 1
                host.ejectedAt = now
                if self.nextSweep == nil { self.nextSweep = now + self.settings.interval }
                ejection = Ejection(endpoint: endpoint, kind: kind, duration: self.ejectionTime(host.ejections))
            }
        }
        self.hosts[endpoint] = host
        return ejection
    }

    /// Runs the sweeps due by `now`; returns the endpoints brought back into service.
    @discardableResult
    public mutating func sweepIfDue(now: Duration) -> [String] {
        guard var due = self.nextSweep, due <= now else { return [] }
        var returned: [String] = []
        while due <= now {
            for (endpoint, host) in self.hosts {
                guard let since = host.ejectedAt, self.ejectionTime(host.ejections) <= due - since else { continue }
                self.hosts[endpoint]?.ejectedAt = nil
                returned.append(endpoint)
            }
            due += self.settings.interval
        }
        self.nextSweep = self.ejectedCount > 0 ? due : nil
        return returned.sorted()
    }

    private func ejectionTime(_ ejections: Int) -> Duration {
        min(self.settings.baseEjectionTime * ejections, max(self.settings.maxEjectionTime, self.settings.baseEjectionTime))
    }
}
