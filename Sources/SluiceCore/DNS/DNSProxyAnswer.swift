/// What the DNS proxy does with one query: answer it here, or forward it upstream.
///
/// In order: a query that is not a standard one gets NOTIMP; a name the policy refuses gets
/// `dns.unregistered`'s answer (a denial, logged); a registered name with addresses in the
/// registry (single-address `addresses`, or STATIC endpoints) is answered authoritatively,
/// as Istio's DNS proxy does — with `dns.autoAllocate`, a host that has an allocated address
/// (`DNSAllocations`) is answered with it; a fresh cached upstream answer is reused; the
/// rest is forwarded.
public enum DNSProxyAnswer: Sendable, Equatable {
    /// Answer with this message; `denied` when the policy refused the name.
    case local(DNSMessage, denied: Bool)
    /// Send the query to the pod's resolvers.
    case forward

    /// TTL of answers made from the registry, in seconds.
    public static let registryTTL: UInt32 = 30

    /// Plans the answer to `query`. Pure.
    public static func plan(
        _ query: DNSMessage, registry: Registry, mode: OutboundTrafficPolicyMode, config: DNSConfig,
        cache: DNSAnswerCache, now: UInt64, allocations: DNSAllocations = DNSAllocations()
    ) -> DNSProxyAnswer {
        guard !query.isResponse, query.opcode == 0, let question = query.questions.first else {
            return .local(query.response(rcode: DNSResponseCode(rawValue: 4)), denied: false)
        }
        switch DNSQueryDecision.decide(name: question.name, registry: registry, mode: mode, unregistered: config.unregistered) {
        case .answer(let code):
            return .local(query.response(rcode: code), denied: true)
        case .resolve(let host):
            if host != nil, question.type == .a || question.type == .aaaa {
                let addresses = allocations.allocation(forHost: question.name).map { [$0.ipv4] + ($0.ipv6.map { [$0] } ?? []) }
                    ?? registry.staticAddresses(forName: question.name)
                if !addresses.isEmpty {
                    let wanted = addresses.filter { $0.isIPv4 == (question.type == .a) }
                    let records = wanted.map { DNSRecord(name: question.name, ttl: registryTTL, data: .address($0)) }
                    return .local(query.response(rcode: .noError, answers: records, authoritative: true), denied: false)
                }
            }
            if let cached = cache.response(to: query, now: now) { return .local(cached, denied: false) }
            return .forward
        }
    }
}
