import Prometheus

/// `sluice_udp_*`: what the NFQUEUE reader decided, in the proxy's own Prometheus registry.
final class UDPMetrics: Sendable {
    private let packetsAllowed: Counter
    private let packetsDropped: Counter
    private let flowsAllowed: Counter
    private let flowsDropped: Counter

    init(_ metrics: ProxyMetrics) {
        let packets = "UDP packets the sidecar gave a verdict from NFQUEUE, by verdict."
        let flows = "UDP flows (first packet of a 5-tuple) the sidecar decided, by verdict."
        packetsAllowed = metrics.registry.sluiceCounter("sluice_udp_packets_total", packets, [("verdict", "allow")])
        packetsDropped = metrics.registry.sluiceCounter("sluice_udp_packets_total", packets, [("verdict", "drop")])
        flowsAllowed = metrics.registry.sluiceCounter("sluice_udp_flows_total", flows, [("verdict", "allow")])
        flowsDropped = metrics.registry.sluiceCounter("sluice_udp_flows_total", flows, [("verdict", "drop")])
    }

    func packet(allowed: Bool, newFlow: Bool) {
        (allowed ? packetsAllowed : packetsDropped).increment()
        if newFlow { (allowed ? flowsAllowed : flowsDropped).increment() }
    }
}

extension PrometheusCollectorRegistry {
    /// A counter under a fixed metric name (as ProxyMetrics registers Istio's).
    func sluiceCounter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
