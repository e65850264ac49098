import Foundation
import NIOCore
import NIOPosix
import SluiceCore
import SluiceQUIC

/// A QUIC flow whose ClientHello is read, waiting for its verdict (the sidecar resolving its SNI).
struct WaitingQUICFlow {
    /// Held packets (the first flight), in order.
    var packets: [UInt32]
    let datagram: UDPDatagram
    let clientHello: QUICClientHelloResult
    /// Monotonic milliseconds after which the name counts as not resolving to the destination.
    let deadline: UInt64
}

/// QUIC by SNI (issue 22): UDP 443 that no `protocol: UDP` port allows is decided by the
/// client Initial's ClientHello.
///
/// - A ClientHello split over datagrams: their verdicts wait (QUICPendingFlows: 4 datagrams,
///   250 ms, 256 flows) until the rest arrives; then all get the flow's verdict.
/// - A registered SNI to an address the pod did not learn from that name: the packets wait
///   while the sidecar resolves the name (DNSResolver, cached 30 s), at most 1 s and
///   `maxResolving` flows; not resolved in time counts as "not an address of that name".
/// - Decided: the flow's later datagrams (until the server answers and conntrack stops
///   queueing them) get the same verdict without being read.
extension UDPGuard {
    static let resolveWait: UInt64 = 1000
    static let maxResolving = 256
    static let maxPacketsPerResolvingFlow = 8

    /// What the locked part found for a packet.
    private enum QUICOutcome {
        case known(Bool)
        case held(forResolution: Bool)
        case decided(UDPFlowVerdict, allow: Bool, packets: Int)
        case resolve(host: String, key: FlowKey)
    }

    func decideQUIC(
        _ datagram: UDPDatagram, packet id: UInt32, config: ActiveConfig, table: LearnedAddresses, now: UInt64
    ) -> NFQueueReader.PacketVerdict {
        let key = FlowKey(datagram)
        let millis = UDPGuard.millis()
        let audit = config.policy.audit
        let outcome: QUICOutcome = state.withLockedValue { state in
            if let allowed = state.flows.quicVerdict(key, now: now) { return .known(allowed) }
            if var waiting = state.resolving[key] {
                // Past the bound the flow's extra datagrams are dropped (let through in audit mode).
                guard waiting.packets.count < UDPGuard.maxPacketsPerResolvingFlow else { return .known(audit) }
                waiting.packets.append(id)
                state.resolving[key] = waiting
                return .held(forResolution: true)
            }
            switch state.initials.datagram(datagram.payload, packet: id, flow: key, now: millis) {
            case .hold:
                return .held(forResolution: false)
            case .decide(let clientHello, let packets):
                var step = UDPFlowPolicy.decideQUIC(
                    datagram, clientHello: clientHello, registry: config.policy.registry, learned: table, now: now,
                    mode: config.policy.mode)
                if case .resolve = step, state.resolving.count >= UDPGuard.maxResolving {
                    step = UDPFlowPolicy.decideQUIC(
                        datagram, clientHello: clientHello, registry: config.policy.registry, learned: table, now: now,
                        mode: config.policy.mode, resolved: [])
                }
                switch step {
                case .verdict(let verdict):
                    let allow = verdict.allow || audit
                    state.flows.decidedQUIC(key, allowed: allow, now: now)
                    state.due += packets.filter { $0 != id }.map { (id: $0, accept: allow) }
                    return .decided(verdict, allow: allow, packets: packets.count)
                case .resolve(let host):
                    state.resolving[key] = WaitingQUICFlow(
                        packets: packets, datagram: datagram, clientHello: clientHello, deadline: millis + UDPGuard.resolveWait)
                    return .resolve(host: host, key: key)
                }
            }
        }
        switch outcome {
        case .known(let allowed):
            metrics.packet(allowed: allowed, newFlow: false)
            return allowed ? .accept : .drop
        case .held(let forResolution):
            metrics.held(forResolution: forResolution)
            return .hold
        case .decided(let verdict, let allow, let packets):
            finished(datagram, verdict: verdict, allow: allow, packets: packets)
            return allow ? .accept : .drop
        case .resolve(let host, let key):
            metrics.held(forResolution: true)
            resolve(host, for: key)
            return .hold
        }
    }

    /// Asks the sidecar's resolver for `host`, then decides the flow with its addresses.
    private func resolve(_ host: String, for key: FlowKey) {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        runtime.resolver.resolve(host: host, port: UDPFlowPolicy.quicPort, on: loop).whenComplete { [self] result in
            let addresses = (try? result.get())?.compactMap { $0.ipAddress.flatMap(IPAddress.init) } ?? []
            self.resolved(key, addresses: addresses)
        }
    }

    /// The resolver answered: decide the flow and send its held packets' verdicts.
    private func resolved(_ key: FlowKey, addresses: [IPAddress]) {
        let config = runtime.config
        let table = book.current
        let now = LearnedAddressBook.now()
        let decided = state.withLockedValue { state -> (WaitingQUICFlow, UDPFlowVerdict, Bool)? in
            // Gone: its time ran out first and `dueVerdicts` decided it.
            guard let flow = state.resolving.removeValue(forKey: key) else { return nil }
            let verdict = UDPGuard.verdict(flow, resolved: addresses, config: config, table: table, now: now)
            let allow = verdict.allow || config.policy.audit
            state.flows.decidedQUIC(key, allowed: allow, now: now)
            return (flow, verdict, allow)
        }
        guard let (flow, verdict, allow) = decided else { return }
        finished(flow.datagram, verdict: verdict, allow: allow, packets: flow.packets.count)
        let reader = self.reader.withLockedValue { $0 }
        let logger = runtime.logger
        reader?.send(flow.packets.map { (id: $0, accept: allow) }, onError: { logger.warning("\($0)") })
    }

    /// The verdicts of held packets that are ready: decided by a later packet, or whose wait
    /// ran out (decided without SNI, or as not resolving to the destination). `closing`: every
    /// held packet, as the queue closes.
    func dueVerdicts(closing: Bool) -> [(id: UInt32, accept: Bool)] {
        let millis = UDPGuard.millis()
        let config = runtime.config
        let table = book.current
        let now = LearnedAddressBook.now()
        let audit = config.policy.audit
        var decided: [(datagram: UDPDatagram, verdict: UDPFlowVerdict, allow: Bool, packets: Int)] = []
        let verdicts = state.withLockedValue { state -> [(id: UInt32, accept: Bool)] in
            var verdicts = state.due
            state.due = []
            let expired = closing ? state.initials.removeAll() : state.initials.expire(now: millis)
            var ready = expired.map {
                (key: $0.flow, flow: WaitingQUICFlow(
                    packets: $0.packets, datagram: $0.flow.datagram, clientHello: .undecodable(.incompleteClientHello),
                    deadline: millis))
            }
            for (key, flow) in state.resolving where closing || flow.deadline <= millis {
                ready.append((key, flow))
            }
            for (key, flow) in ready {
                state.resolving[key] = nil
                let verdict = UDPGuard.verdict(flow, resolved: [], config: config, table: table, now: now)
                let allow = verdict.allow || audit
                state.flows.decidedQUIC(key, allowed: allow, now: now)
                decided.append((flow.datagram, verdict, allow, flow.packets.count))
                verdicts += flow.packets.map { (id: $0, accept: allow) }
            }
            return verdicts
        }
        for item in decided { finished(item.datagram, verdict: item.verdict, allow: item.allow, packets: item.packets) }
        return verdicts
    }

    /// A QUIC flow's verdict with the name's addresses known (never another resolution).
    private static func verdict(
        _ flow: WaitingQUICFlow, resolved: [IPAddress], config: ActiveConfig, table: LearnedAddresses, now: UInt64
    ) -> UDPFlowVerdict {
        let step = UDPFlowPolicy.decideQUIC(
            flow.datagram, clientHello: flow.clientHello, registry: config.policy.registry, learned: table, now: now,
            mode: config.policy.mode, resolved: resolved)
        if case .verdict(let verdict) = step { return verdict }
        return UDPFlowVerdict(allow: config.policy.mode == .allowAny, hostname: nil, reason: "quic no sni", registered: false)
    }

    /// A QUIC flow decided: its log line (the flow's first packet's, with the SNI as
    /// authority), and its `packets` counted.
    private func finished(_ datagram: UDPDatagram, verdict: UDPFlowVerdict, allow: Bool, packets: Int) {
        for index in 0..<max(1, packets) { metrics.packet(allowed: allow, newFlow: index == 0) }
        runtime.logUDPFlow(datagram, verdict: verdict, allowed: allow)
    }

    /// Monotonic milliseconds.
    static func millis() -> UInt64 {
        UInt64(NIODeadline.now().uptimeNanoseconds / 1_000_000)
    }
}
