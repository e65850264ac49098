/// The DestinationRule traffic policy of a destination that no VirtualService route names:
/// Istio applies a DestinationRule to its host's traffic whether or not a route takes it
/// there (its cluster `outbound|port||host` carries the rule's settings for that port).
public struct ClusterPolicy: Sendable, Equatable {
    /// The DestinationRule.
    public var rule: RoutingObjectID
    /// Its policy for the port (`portLevelSettings` merged).
    public var policy: TrafficPolicy

    public init(rule: RoutingObjectID, policy: TrafficPolicy) {
        self.rule = rule
        self.policy = policy
    }

    /// What the data path applies of it: connection pool, outlier detection, load balancer
    /// (`tls` is the connector's, when it originates TLS).
    public var appliesInDataPath: Bool {
        policy.connectionPool != nil || policy.outlierDetection != nil || policy.loadBalancer != nil
    }
}

/// An immutable box, so that a `Decision` without a cluster policy stays as small to copy.
final class ClusterPolicyBox: Sendable {
    let value: ClusterPolicy
    init(_ value: ClusterPolicy) { self.value = value }
}

extension DestinationRule {
    /// The rule among `rules` for `host`: an exact host first, then the most specific wildcard.
    public static func best(for host: String, in rules: [DestinationRule]) -> DestinationRule? {
        rules
            .filter { HostPattern.matches($0.host, host) }
            .max { HostPattern.specificity($0.host) < HostPattern.specificity($1.host) }
    }
}

extension Policy {
    /// The cluster policy for a registered `host` on `port` routed by no VirtualService, nil
    /// when no DestinationRule (visible to this workload) sets one.
    func clusterPolicy(host: String, port: Int) -> ClusterPolicy? {
        guard !destinationRules.isEmpty, let rule = DestinationRule.best(for: host, in: destinationRules) else { return nil }
        let policy = rule.policy(subset: nil, port: port)
        return policy.isEmpty ? nil : ClusterPolicy(rule: rule.id, policy: policy)
    }
}
