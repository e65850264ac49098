import Prometheus

/// `sluice_dns_queries_total{answer}`: how the DNS proxy answered.
final class DNSMetrics: Sendable {
    /// Where an answer came from.
    enum Answer: Int, CaseIterable {
        case registry, cache, upstream, denied, failed, malformed
    }

    /// By `Answer.rawValue`: counting a query indexes an array (a dictionary keyed by a
    /// string-valued enum hashed the string on every cache hit).
    private let counters: [Counter]

    init(_ metrics: ProxyMetrics) {
        counters = Answer.allCases.map { answer in
            metrics.registry.sluiceCounter(
                "sluice_dns_queries_total", "DNS queries the DNS proxy answered, by where the answer came from.",
                [("answer", "\(answer)")])
        }
    }

    func count(_ answer: Answer) { counters[answer.rawValue].increment() }
}
