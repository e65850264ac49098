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
    /// `sluice_dns_upstream_answers_dropped_total`: answers on a forwarder socket that no query
    /// in flight asked for (a wrong id or question: spoofed; or late, after the query's timeout).
    private let dropped: Counter

    init(_ metrics: ProxyMetrics) {
        counters = Answer.allCases.map { answer in
            metrics.registry.sluiceCounter(
                "sluice_dns_queries_total", "DNS queries the DNS proxy answered, by where the answer came from.",
                [("answer", "\(answer)")])
        }
        dropped = metrics.registry.sluiceCounter(
            "sluice_dns_upstream_answers_dropped_total",
            "Answers from the pod's resolvers that no forwarded query was waiting for (wrong id or question, or too late).", [])
    }

    func countDroppedAnswer() { dropped.increment() }

    func count(_ answer: Answer) { counters[answer.rawValue].increment() }

    /// Counts `queries` answers at once (the DNS proxy's hit thread: one atomic add a batch).
    func count(_ answer: Answer, by queries: Int) { counters[answer.rawValue].increment(by: Int64(queries)) }
}
