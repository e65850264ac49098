import Logging
import NIOConcurrencyHelpers
public import ServiceLifecycle
import SluiceCore

/// The sidecar's UDP path (`udp.capture: true`): reads the NFQUEUE that `sluice-init
/// --capture-udp` fills and gives each packet UDPFlowPolicy's verdict. A flow's first packet
/// (5-tuple seen for the first time) is logged with protocol "UDP" and counted.
public final class UDPGuard: Service, Sendable {
    private let runtime: ProxyRuntime
    private let queue: Int
    private let metrics: UDPMetrics
    /// The address → name table; the DNS proxy fills it, the policy reads it.
    private let book: LearnedAddressBook
    private let flows = NIOLockedValueBox(FlowMemory())

    /// Creates the guard for queue `queue`, deciding with the names in `book`.
    public init(runtime: ProxyRuntime, queue: Int, book: LearnedAddressBook) {
        self.runtime = runtime
        self.queue = queue
        self.book = book
        self.metrics = UDPMetrics(runtime.metrics)
    }

    /// Reads the queue until graceful shutdown, then closes it.
    public func run() async throws {
        let reader = try NFQueueReader(queue: queue)
        let logger = runtime.logger
        runtime.logger.notice("UDP: reading NFQUEUE \(queue)")
        reader.start(onError: { logger.warning("\($0)") }, decide: { [self] bytes in self.decide(bytes) })
        try? await gracefulShutdown()
        reader.stop()
        runtime.logger.notice("UDP: NFQUEUE \(queue) closed")
    }

    /// The verdict for one queued packet. Reads the headers in place (the payload is copied
    /// only for DNS and QUIC ports); allocates only for a flow's first packet (its log line).
    private func decide(_ packet: UnsafeRawBufferPointer) -> Bool {
        let config = runtime.config
        guard let datagram = UDPDatagram(packet: packet) else {
            // Queued but unreadable (an IPv6 fragment, an unknown extension header, a cut
            // copy): nothing to match, so the mode decides, as for an unregistered destination.
            let allow = config.policy.mode == .allowAny || config.policy.audit
            metrics.packet(allowed: allow, newFlow: false)
            return allow
        }
        let now = LearnedAddressBook.now()
        let table = book.current
        let verdict = UDPFlowPolicy.decide(
            datagram, registry: config.snapshot.registry, learned: table, now: now,
            mode: config.policy.mode, dns: config.snapshot.config.dns)
        let allow = verdict.allow || config.policy.audit
        let key = FlowKey(datagram)
        let isNew = flows.withLockedValue { $0.firstSeen(key, now: now) }
        metrics.packet(allowed: allow, newFlow: isNew)
        if isNew { runtime.logUDPFlow(datagram, verdict: verdict, allowed: allow) }
        return allow
    }
}

/// A UDP flow's identity.
struct FlowKey: Hashable {
    let source: IPAddress
    let sourcePort: Int
    let destination: IPAddress
    let destinationPort: Int

    init(_ datagram: UDPDatagram) {
        source = datagram.source
        sourcePort = datagram.sourcePort
        destination = datagram.destination
        destinationPort = datagram.destinationPort
    }
}

/// The flows seen lately (bounded; a flow idle for 60 s counts as new again).
struct FlowMemory {
    static let capacity = 16384
    static let idle: UInt64 = 60
    private var lastSeen: [FlowKey: UInt64] = [:]

    mutating func firstSeen(_ key: FlowKey, now: UInt64) -> Bool {
        let previous = lastSeen.updateValue(now, forKey: key)
        if lastSeen.count > FlowMemory.capacity {
            lastSeen = lastSeen.filter { now - $0.value < FlowMemory.idle }
            if lastSeen.count > FlowMemory.capacity { lastSeen = [key: now] }
        }
        guard let previous else { return true }
        return now - previous >= FlowMemory.idle
    }
}

extension ProxyRuntime {
    /// A UDP flow's first packet: one access-log line, protocol "UDP", in the fields the TCP
    /// lines use (`upstream_host` the destination, `authority` the learned or queried name,
    /// `response_flags` NR and `BlackHoleCluster` when dropped).
    func logUDPFlow(_ datagram: UDPDatagram, verdict: UDPFlowVerdict, allowed: Bool) {
        let destination = UDPGuard.show(datagram.destination, datagram.destinationPort)
        var record = AccessLogRecord(
            startTime: wallClockMillis(), protocol: "UDP", authority: verdict.hostname,
            upstreamHost: destination,
            upstreamCluster: verdict.allow
                ? (verdict.registered ? "outbound|\(datagram.destinationPort)||\(verdict.hostname ?? datagram.destination.description)" : "PassthroughCluster")
                : "BlackHoleCluster",
            downstreamLocalAddress: destination,
            downstreamRemoteAddress: UDPGuard.show(datagram.source, datagram.sourcePort),
            routeName: verdict.reason)
        if !verdict.allow { record.responseFlags = .noRouteFound }
        self.accessLog?.write(record)
    }
}

extension UDPGuard {
    static func show(_ address: IPAddress, _ port: Int) -> String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
