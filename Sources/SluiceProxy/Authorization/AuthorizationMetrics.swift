import NIOConcurrencyHelpers
import Prometheus

/// `sluice_rbac_decisions_total{decision, policy}`: AuthorizationPolicy outcomes at the
/// gateway, as Envoy's RBAC filter counts `allowed`, `denied`, `shadow_denied` (dry run)
/// and AUDIT matches. `policy` comes from configuration (`ns[..]-policy[..]-rule[..]`, or
/// `none` for the default deny), so the label set is bounded by the policies loaded.
final class AuthorizationMetrics: Sendable {
    static let name = "sluice_rbac_decisions_total"
    private let registry: PrometheusCollectorRegistry
    private let counters = NIOLockedValueBox<[String: Counter]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func count(_ decision: String, policy: String) {
        let key = decision + " " + policy
        let counter = self.counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: Self.name, unitName: "", helpText: "AuthorizationPolicy decisions at the gateway, by decision and policy."),
                labels: [("decision", decision), ("policy", policy)])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
