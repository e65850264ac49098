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
    /// The answer cache, and the configuration whose policy let its answers through: a
    /// cache hit skips the decision (`respondFromCache`), so a new configuration empties it.
    private let cache = NIOLockedValueBox((config: ActiveConfig?.none, answers: DNSAnswerCache()))

    /// A responder forwarding to `upstreams` on `upstreamPort` (53; tests use their own).
    init(runtime: ProxyRuntime, book: LearnedAddressBook, upstreams: [IPAddress], upstreamPort: Int = 53, timeout: TimeAmount = .seconds(2)) {
        self.runtime = runtime
        self.book = book
        self.metrics = DNSMetrics(runtime.metrics)
        self.forwarder = DNSForwarder(upstreams: upstreams, timeout: timeout, port: upstreamPort, metrics: metrics)
    }

    /// The cache-hit path, before `respond`: the reply to a plain query whose question is
    /// cached and fresh, made by patching the cached answer's bytes (no message parsed or
    /// built, nothing allocated but the reply). Nil when it does not apply; then `respond`,
    /// which decides as usual. Off in audit mode, where each refusal must still be logged.
    func respondFromCache(_ query: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let config = runtime.config
        let now = LearnedAddressBook.now()
        guard let hit = withCache(of: config, { $0.wireResponse(to: query, now: now, allocator: allocator) }) else { return nil }
        metrics.count(.cache)
        book.learn(hit.learnable, cappedAt: hit.secondsLeft, now: now)
        return hit.bytes
    }

    /// The same for the UDP hit thread: the reply written into `reply`, its length returned;
    /// nothing allocated. Not counted: the caller counts a batch's hits at once.
    func answerFromCache(_ query: UnsafeRawBufferPointer, into reply: UnsafeMutableRawBufferPointer, config: ActiveConfig, now: UInt64) -> Int? {
        guard let hit = withCache(of: config, { $0.writeResponse(to: query, into: reply, now: now) }) else { return nil }
        book.learn(hit.learnable, cappedAt: hit.secondsLeft, now: now)
        return hit.length
    }

    /// `body` on the cache under its lock, if the cache is `config`'s and not in audit mode
    /// (a first use under a new configuration empties it and returns nil).
    private func withCache<Hit>(of config: ActiveConfig, _ body: (DNSAnswerCache) -> Hit?) -> Hit? {
        guard !config.policy.audit else { return nil }
        return cache.withLockedValue { cache -> Hit? in
            guard cache.config === config else {
                adopt(config, &cache)
                return nil
            }
            return body(cache.answers)
        }
    }

    /// A new configuration (under the cache's lock): an empty cache, and the learned table's
    /// TTL bounds from its `dns:`.
    private func adopt(_ config: ActiveConfig, _ cache: inout (config: ActiveConfig?, answers: DNSAnswerCache)) {
        cache = (config: Optional(config), answers: DNSAnswerCache())
        book.setTTLBounds(config.snapshot.config.dns)
    }

    /// The reply bytes for `bytes` from `client`; nil drops the query (not DNS at all).
    func respond(_ bytes: [UInt8], from client: SocketAddress?, on loop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        guard let query = try? DNSMessage.parse(bytes) else {
            metrics.count(.malformed)
            return loop.makeSucceededFuture(nil)
        }
        let config = runtime.config
        let now = LearnedAddressBook.now()
        let cache = self.cache.withLockedValue { cache in
            if cache.config !== config { adopt(config, &cache) }
            return cache.answers
        }
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
                    self.cache.withLockedValue { cache in
                        // Kept only under the configuration that decided to forward it.
                        if cache.config === config { cache.answers.store(response, now: now) }
                    }
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
