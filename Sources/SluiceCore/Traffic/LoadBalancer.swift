/// `loadBalancer.simple` of a DestinationRule, applied over a cluster's endpoints as Envoy's
/// load balancers do (Envoy "Supported load balancers"; Istio DestinationRule reference,
/// LoadBalancerSettings.SimpleLB).
public enum LoadBalancerPolicy: String, Sendable, Equatable {
    /// Each healthy endpoint in turn (Istio's default).
    case roundRobin = "ROUND_ROBIN"
    /// Envoy's power of two choices: two healthy endpoints drawn at random, the one with fewer
    /// requests outstanding wins.
    case leastRequest = "LEAST_REQUEST"
    /// A healthy endpoint at random.
    case random = "RANDOM"
    /// No balancing: the address the caller dialled (decided by `Policy`, not here).
    case passthrough = "PASSTHROUGH"

    /// The policy a traffic policy names; ROUND_ROBIN when unset. Istio's `LEAST_CONN` is the
    /// deprecated name of LEAST_REQUEST.
    public init(_ simple: String?) {
        switch simple?.uppercased() {
        case "LEAST_REQUEST", "LEAST_CONN": self = .leastRequest
        case "RANDOM": self = .random
        case "PASSTHROUGH": self = .passthrough
        default: self = .roundRobin
        }
    }
}

/// Picks the endpoint for each request. Pure: the caller passes which endpoints are ejected,
/// their outstanding requests and a random source; the round-robin position is its state.
public struct EndpointPicker: Sendable {
    /// Envoy's default healthy panic threshold: below 50% healthy endpoints, balancing ignores
    /// health and spreads over all of them.
    public static let panicThresholdPercent = 50

    public let policy: LoadBalancerPolicy
    private var next = 0

    public init(policy: LoadBalancerPolicy) {
        self.policy = policy
    }

    /// The order to try `count` endpoints in: the chosen one first, then the other healthy ones
    /// (round-robin order from it), ejected ones last (a connect failure falls through to the
    /// next address, as Sluice's dial always has). `random(n)` returns a value in `0..<n`.
    public mutating func order(
        count: Int, isEjected: (Int) -> Bool, outstanding: (Int) -> Int, random: (Int) -> Int
    ) -> [Int] {
        guard count > 1 else { return count == 1 ? [0] : [] }
        let healthy = (0..<count).filter { !isEjected($0) }
        let panic = healthy.count * 100 < Self.panicThresholdPercent * count
        let candidates = panic || healthy.isEmpty ? Array(0..<count) : healthy
        let chosen: Int
        switch self.policy {
        case .roundRobin, .passthrough:
            chosen = candidates[self.next % candidates.count]
            self.next = self.next == Int.max ? 0 : self.next + 1
        case .random:
            chosen = candidates[random(candidates.count)]
        case .leastRequest:
            let first = candidates[random(candidates.count)]
            let second = candidates[random(candidates.count)]
            chosen = outstanding(second) < outstanding(first) ? second : first
        }
        let start = candidates.firstIndex(of: chosen) ?? 0
        let rotated = Array(candidates[start...] + candidates[..<start])
        let rest = (0..<count).filter { !candidates.contains($0) }
        return rotated + rest
    }
}
