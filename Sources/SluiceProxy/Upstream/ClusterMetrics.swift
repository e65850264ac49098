import NIOConcurrencyHelpers
import Prometheus

/// The DestinationRule data path's counters, by cluster (`outbound|port|subset|host`, from
/// configuration, so the label set is bounded by the routes loaded):
/// - `sluice_upstream_overflow_total{cluster, limit}`: requests and connections a
///   `connectionPool` limit refused (`limit` = `pending` for http1MaxPendingRequests,
///   `requests` for http2MaxRequests, `retries` for maxRetries, `connections` for an opaque
///   connection over maxConnections) — Envoy's `upstream_rq_pending_overflow`,
///   `upstream_rq_overflow`, `upstream_rq_retry_overflow`, `upstream_cx_overflow`;
/// - `sluice_outlier_ejections_total{cluster}`: endpoints ejected (Envoy's
///   `outlier_detection.ejections_enforced_total`).
final class ClusterMetrics: Sendable {
    static let overflowName = "sluice_upstream_overflow_total"
    static let ejectionsName = "sluice_outlier_ejections_total"

    /// Which limit refused.
    enum Limit: String, Sendable {
        case pending, requests, retries, connections
    }

    private let registry: PrometheusCollectorRegistry
    private let counters = NIOLockedValueBox<[String: Counter]>([:])

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func overflow(cluster: String, limit: Limit) {
        self.counter(Self.overflowName, "Requests and connections refused by a DestinationRule connectionPool limit (503 UO).",
                     [("cluster", cluster), ("limit", limit.rawValue)]).increment()
    }

    func ejected(cluster: String) {
        self.counter(Self.ejectionsName, "Endpoints ejected by a DestinationRule outlierDetection.", [("cluster", cluster)]).increment()
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        let key = ([name] + labels.map(\.1)).joined(separator: " ")
        return self.counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
            counters[key] = counter
            return counter
        }
    }
}
