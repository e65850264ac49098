import Logging
import NIOConcurrencyHelpers
import NIOCore
public import ServiceLifecycle
import SluiceCore
import SluiceQUIC

/// The sidecar's UDP path (`udp.capture: true`): reads the NFQUEUE that `sluice-init
/// --capture-udp` fills and gives each packet UDPFlowPolicy's verdict. A flow's first packet
/// (5-tuple seen for the first time) is logged with protocol "UDP" and counted. UDP 443 is
/// decided by the QUIC ClientHello's SNI (UDPGuard+QUIC.swift).
public final class UDPGuard: Service, Sendable {
    let runtime: ProxyRuntime
    private let queue: Int
    let metrics: UDPMetrics
    /// The address → name table; the DNS proxy fills it, the policy reads it.
    let book: LearnedAddressBook
    let state = NIOLockedValueBox(UDPGuardState())
    /// The queue being read, for verdicts sent from other threads (after a resolution).
    let reader = NIOLockedValueBox<NFQueueReader?>(nil)

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
        self.reader.withLockedValue { $0 = reader }
        let logger = runtime.logger
        runtime.logger.notice("UDP: reading NFQUEUE \(queue)")
        reader.start(
            onError: { logger.warning("\($0)") },
            decide: { [self] bytes, id in self.decide(bytes, packet: id) },
            due: { [self] closing in self.dueVerdicts(closing: closing) })
        try? await gracefulShutdown()
        reader.stop()
        self.reader.withLockedValue { $0 = nil }
        runtime.logger.notice("UDP: NFQUEUE \(queue) closed")
    }

    /// The verdict for one queued packet. Reads the headers in place (the payload is copied
    /// only for DNS and QUIC ports); allocates only for a flow's first packet (its log line).
    private func decide(_ packet: UnsafeRawBufferPointer, packet id: UInt32) -> NFQueueReader.PacketVerdict {
        let config = runtime.config
        guard let datagram = UDPDatagram(packet: packet) else {
            // Queued but unreadable (an IPv6 fragment, an unknown extension header, a cut
            // copy): nothing to match, so the mode decides, as for an unregistered destination.
            let allow = config.policy.mode == .allowAny || config.policy.audit
            metrics.packet(allowed: allow, newFlow: false)
            return allow ? .accept : .drop
        }
        let now = LearnedAddressBook.now()
        let table = book.current
        let verdict = UDPFlowPolicy.decide(
            datagram, registry: config.snapshot.registry, learned: table, now: now,
            mode: config.policy.mode, dns: config.snapshot.config.dns)
        if UDPFlowPolicy.isDecidedBySNI(datagram, verdict: verdict) {
            return decideQUIC(datagram, packet: id, config: config, table: table, now: now)
        }
        let allow = verdict.allow || config.policy.audit
        let key = FlowKey(datagram)
        let isNew = state.withLockedValue { $0.flows.firstSeen(key, now: now) }
        metrics.packet(allowed: allow, newFlow: isNew)
        if isNew { runtime.logUDPFlow(datagram, verdict: verdict, allowed: allow) }
        return allow ? .accept : .drop
    }
}

/// What the guard keeps between packets, under one lock.
struct UDPGuardState {
    var flows = FlowMemory()
    /// QUIC flows whose ClientHello continues in a later datagram.
    var initials = QUICPendingFlows<FlowKey>()
    /// QUIC flows waiting for the sidecar to resolve their SNI.
    var resolving: [FlowKey: WaitingQUICFlow] = [:]
    /// Verdicts of held packets decided by a later one, for the reader's next batch.
    var due: [(id: UInt32, accept: Bool)] = []
}

extension ProxyRuntime {
    /// A UDP flow's first packet: one access-log line, protocol "UDP", in the fields the TCP
    /// lines use (`upstream_host` the destination, `authority` the learned or queried name or
    /// a QUIC flow's SNI, `requested_server_name` that SNI, `response_flags` NR and
    /// `BlackHoleCluster` when dropped).
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
        record.requestedServerName = verdict.serverName
        if !verdict.allow { record.responseFlags = .noRouteFound }
        self.accessLog?.write(record)
    }
}

extension UDPGuard {
    static func show(_ address: IPAddress, _ port: Int) -> String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
