import Prometheus

/// `sluice_dns_queries_total{answer}`: how the DNS proxy answered.
final class DNSMetrics: Sendable {
    /// Where an answer came from.
    enum Answer: String, CaseIterable {
        case registry, cache, upstream, denied, failed, malformed
    }

    private let counters: [Answer: Counter]

    init(_ metrics: ProxyMetrics) {
        var counters: [Answer: Counter] = [:]
        for answer in Answer.allCases {
            counters[answer] = metrics.registry.sluiceCounter(
                "sluice_dns_queries_total", "DNS queries the DNS proxy answered, by where the answer came from.",
                [("answer", answer.rawValue)])
        }
        self.counters = counters
    }

    func count(_ answer: Answer) { counters[answer]?.increment() }
}
