import NIOConcurrencyHelpers
import NIOCore
import SluiceCore

/// Answers one DNS query (UDP payload or TCP message): plans with DNSProxyAnswer, forwards
/// what it must, caches and learns upstream answers, logs refusals. Shared by the UDP and
/// TCP listeners of the DNS proxy.
final class DNSResponder: Sendable {
    let runtime: ProxyRuntime
    let book: LearnedAddressBook
    let forwarder: DNSForwarder
    let metrics: DNSMetrics
    private let cache = NIOLockedValueBox(DNSAnswerCache())

    init(runtime: ProxyRuntime, book: LearnedAddressBook, forwarder: DNSForwarder) {
        self.runtime = runtime
        self.book = book
        self.forwarder = forwarder
        self.metrics = DNSMetrics(runtime.metrics)
    }

    /// The reply bytes for `bytes` from `client`; nil drops the query (not DNS at all).
    func respond(_ bytes: [UInt8], from client: SocketAddress?, on loop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        guard let query = try? DNSMessage.parse(bytes) else {
            metrics.count(.malformed)
            return loop.makeSucceededFuture(nil)
        }
        let config = runtime.config
        let now = LearnedAddressBook.now()
        let cache = self.cache.withLockedValue { $0 }
        var plan = DNSProxyAnswer.plan(
            query, registry: config.snapshot.registry, mode: config.policy.mode, config: config.snapshot.config.dns,
            cache: cache, now: now, allocations: config.policy.resolvedNames?.allocations ?? DNSAllocations())
        if case .local(let message, denied: true) = plan {
            log(query, rcode: message.rcode, client: client, audit: config.policy.audit)
            // Audit mode: the refusal is logged and counted, the name still resolves.
            if config.policy.audit { plan = cache.response(to: query, now: now).map { .local($0, denied: false) } ?? .forward }
        }
        switch plan {
        case .local(let message, let denied):
            metrics.count(denied ? .denied : (message.flags & 0x0400 != 0 ? .registry : .cache))
            book.learn(from: message)
            return loop.makeSucceededFuture(try? message.serialized())
        case .forward:
            return forwarder.forward(bytes, on: loop).map { reply -> [UInt8]? in
                self.metrics.count(.upstream)
                if let response = try? DNSMessage.parse(reply) {
                    let now = LearnedAddressBook.now()
                    self.cache.withLockedValue { $0.store(response, now: now) }
                    self.book.learn(from: response)
                }
                return reply
            }.recover { error in
                self.metrics.count(.failed)
                self.runtime.logger.warning("DNS: \(query.questions.first?.name ?? "?"): \(error)")
                return try? query.response(rcode: .serverFailure).serialized()
            }
        }
    }

    /// A refused name: one access-log line, protocol "DNS", route `dns_<RCODE>`, flag NR.
    private func log(_ query: DNSMessage, rcode: DNSResponseCode, client: SocketAddress?, audit: Bool) {
        var record = AccessLogRecord(
            startTime: wallClockMillis(), protocol: "DNS", authority: query.questions.first?.name,
            upstreamCluster: "BlackHoleCluster", downstreamRemoteAddress: client?.logDescription,
            routeName: "dns_\(rcode)")
        record.responseFlags = .noRouteFound
        if audit { record.istioPolicyStatus = Decision.auditDeniedStatus }
        runtime.accessLog?.write(record)
    }
}
