import Prometheus

/// `sluice_udp_*`: what the NFQUEUE reader decided, in the proxy's own Prometheus registry.
final class UDPMetrics: Sendable {
    private let packetsAllowed: Counter
    private let packetsDropped: Counter
    private let flowsAllowed: Counter
    private let flowsDropped: Counter
    private let heldForClientHello: Counter
    private let heldForResolution: Counter

    init(_ metrics: ProxyMetrics) {
        let packets = "UDP packets the sidecar gave a verdict from NFQUEUE, by verdict."
        let flows = "UDP flows (first packet of a 5-tuple) the sidecar decided, by verdict."
        packetsAllowed = metrics.registry.sluiceCounter("sluice_udp_packets_total", packets, [("verdict", "allow")])
        packetsDropped = metrics.registry.sluiceCounter("sluice_udp_packets_total", packets, [("verdict", "drop")])
        flowsAllowed = metrics.registry.sluiceCounter("sluice_udp_flows_total", flows, [("verdict", "allow")])
        flowsDropped = metrics.registry.sluiceCounter("sluice_udp_flows_total", flows, [("verdict", "drop")])
        let held = "QUIC packets whose verdict waited: for the rest of a ClientHello split over datagrams, or for the sidecar to resolve the SNI."
        heldForClientHello = metrics.registry.sluiceCounter("sluice_udp_held_packets_total", held, [("reason", "client_hello")])
        heldForResolution = metrics.registry.sluiceCounter("sluice_udp_held_packets_total", held, [("reason", "resolve")])
    }

    /// A packet's verdict waits: for the rest of its flow's ClientHello, or for a resolution.
    func held(forResolution: Bool) {
        (forResolution ? heldForResolution : heldForClientHello).increment()
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
