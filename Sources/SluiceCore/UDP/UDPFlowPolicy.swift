/// The decision for a UDP flow's first packet.
///
/// Allowed: UDP to an address the pod learned from a registered name (or an entry's
/// `addresses`), on a port that entry registers for UDP (a Sluice `protocol: UDP` port; QUIC
/// is decided by its SNI instead: `decideQUIC`). DNS (port 53) is decided by the query's name
/// when the payload is a query. Everything else is dropped under REGISTRY_ONLY (applications
/// fall back to TCP, where SNI decides) and allowed under ALLOW_ANY.
public struct UDPFlowVerdict: Sendable, Equatable {
    /// Let the datagram through.
    public var allow: Bool
    /// The registered (or learned, or queried) hostname, when there is one.
    public var hostname: String?
    /// Why, in a few words, for the log: `registered`, `unregistered`, `dns query`, `allow any`.
    public var reason: String
    /// Whether the destination matched the registry (false: the mode decided).
    public var registered: Bool
    /// A QUIC flow's SNI, when its ClientHello had one.
    public var serverName: String?

    /// Creates a verdict.
    public init(allow: Bool, hostname: String?, reason: String, registered: Bool, serverName: String? = nil) {
        self.allow = allow
        self.hostname = hostname
        self.reason = reason
        self.registered = registered
        self.serverName = serverName
    }
}

/// Decides UDP flows; pure.
public enum UDPFlowPolicy {
    /// The verdict for `datagram` given what the pod learned by `now`.
    public static func decide(
        _ datagram: UDPDatagram, registry: Registry, learned: LearnedAddresses, now: UInt64,
        mode: OutboundTrafficPolicyMode, dns: DNSConfig
    ) -> UDPFlowVerdict {
        let port = datagram.destinationPort
        if port == 53, let query = try? DNSMessage.parse(datagram.payload), !query.isResponse,
           let question = query.questions.first {
            switch DNSQueryDecision.decide(name: question.name, registry: registry, mode: mode, unregistered: dns.unregistered) {
            case .resolve(let host):
                return UDPFlowVerdict(allow: true, hostname: question.name, reason: "dns query", registered: host != nil)
            case .answer:
                return UDPFlowVerdict(allow: false, hostname: question.name, reason: "dns query unregistered", registered: false)
            }
        }
        if registry.udpPort(address: datagram.destination, port: port) != nil {
            return UDPFlowVerdict(allow: true, hostname: nil, reason: "registered address", registered: true)
        }
        let name = learned.hostname(for: datagram.destination, now: now)
        if let name, registry.udpPort(host: name, port: port) != nil {
            return UDPFlowVerdict(allow: true, hostname: name, reason: "registered", registered: true)
        }
        if mode == .allowAny {
            return UDPFlowVerdict(allow: true, hostname: name, reason: "allow any", registered: false)
        }
        return UDPFlowVerdict(allow: false, hostname: name, reason: "unregistered", registered: false)
    }
}
