public import SluiceCore
/// QUIC by SNI: UDP 443 to a host registered with HTTPS or TLS on 443 is allowed when the
/// client's Initial names that host and the datagram goes to an address that name resolves to.
///
/// The address check matters as much as the name: a datagram goes wherever the app sends it,
/// so an SNI naming a registered host would otherwise open every address on UDP 443 (any
/// CDN front, any server that ignores SNI). The name's addresses are the ones the pod learned
/// from its DNS answers for it (`LearnedAddresses`) or, failing that, the ones the sidecar
/// resolves for it (the caller asks and comes back with `resolved`).
extension UDPFlowPolicy {
    /// QUIC's port: UDP 443, where HTTPS and TLS entries on 443 are reached over HTTP/3.
    public static let quicPort = 443

    /// Whether the datagram is decided by its QUIC ClientHello: UDP 443 that no `protocol: UDP`
    /// port (by learned name or by `addresses`) already allows. `verdict` is `decide`'s.
    public static func isDecidedBySNI(_ datagram: UDPDatagram, verdict: UDPFlowVerdict) -> Bool {
        datagram.destinationPort == quicPort && !verdict.registered
    }

    /// What a QUIC flow's ClientHello leads to.
    public enum QUICStep: Equatable, Sendable {
        /// Decided.
        case verdict(UDPFlowVerdict)
        /// The SNI names a registered host, but the pod did not learn the destination from
        /// that name: resolve `host` and call `decideQUIC` again with its addresses.
        case resolve(host: String)
    }

    /// The verdict for a QUIC flow whose client Initials read as `clientHello` (never
    /// `.incomplete`: the caller waits for the rest, within bounds, or passes
    /// `.undecodable(.incompleteClientHello)`). `registry` is the workload's visible registry
    /// (`Policy.registry`), as for TLS by SNI. Under ALLOW_ANY nothing is resolved.
    ///
    /// | ClientHello | verdict (REGISTRY_ONLY) | `route_name` |
    /// |---|---|---|
    /// | SNI registered on 443 (HTTPS/TLS), destination learned from it | allow | `quic sni` |
    /// | the same, destination among the sidecar's addresses for it | allow | `quic sni resolved` |
    /// | the same, destination not an address of that name | drop | `quic sni address mismatch` |
    /// | SNI not registered on 443 | drop | `quic sni unregistered` |
    /// | no SNI, not QUIC v1, not decodable, not complete in time | drop | `quic no sni` |
    public static func decideQUIC(
        _ datagram: UDPDatagram, clientHello: QUICClientHelloResult, registry: Registry, learned: LearnedAddresses,
        now: UInt64, mode: OutboundTrafficPolicyMode, resolved: [IPAddress]? = nil
    ) -> QUICStep {
        let destination = datagram.destination.unmappedIPv4
        let learnedName = learned.hostname(for: destination, now: now)
        guard case .clientHello(let serverName?) = clientHello, let sni = Authority(serverName, as: .hostOnly)?.host else {
            return .verdict(byMode(hostname: learnedName, serverName: nil, reason: "quic no sni", mode: mode))
        }
        guard registry.lookup(host: sni, port: quicPort, families: .tls) != nil else {
            return .verdict(byMode(hostname: sni, serverName: sni, reason: "quic sni unregistered", mode: mode))
        }
        if learnedName == sni {
            return .verdict(UDPFlowVerdict(allow: true, hostname: sni, reason: "quic sni", registered: true, serverName: sni))
        }
        guard let resolved else {
            if mode == .allowAny {
                return .verdict(byMode(hostname: sni, serverName: sni, reason: "quic sni address mismatch", mode: mode))
            }
            return .resolve(host: sni)
        }
        if resolved.contains(where: { $0.unmappedIPv4 == destination }) {
            return .verdict(UDPFlowVerdict(allow: true, hostname: sni, reason: "quic sni resolved", registered: true, serverName: sni))
        }
        return .verdict(byMode(hostname: sni, serverName: sni, reason: "quic sni address mismatch", mode: mode))
    }

    /// Not registered: dropped under REGISTRY_ONLY (with `reason`), allowed under ALLOW_ANY.
    private static func byMode(hostname: String?, serverName: String?, reason: String, mode: OutboundTrafficPolicyMode) -> UDPFlowVerdict {
        UDPFlowVerdict(
            allow: mode == .allowAny, hostname: hostname, reason: mode == .allowAny ? "allow any" : reason,
            registered: false, serverName: serverName)
    }
}
