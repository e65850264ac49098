import ArgumentParser
import SluiceCore
import SluiceQUIC

/// `sluice explain quic://SNI[:443] --ip A`: what the sidecar's UDP guard does with a QUIC
/// flow whose client Initial names SNI and goes to address A, through the calls the guard
/// makes (`UDPFlowPolicy.decide`, then `decideQUIC`). Explain resolves nothing: where the
/// guard would resolve the SNI to check the address, it says so, and `--resolved A=SNI`
/// decides as if the pod had resolved A from that name.
enum ExplainQUIC {
    /// QUIC's port, where `explain tls://host:443` adds a `quic:` line.
    static let port = UDPFlowPolicy.quicPort

    /// The `quic://` form's SNI and port (443 unless given).
    static func parse(_ url: String) throws -> (serverName: String, port: Int)? {
        guard url.lowercased().hasPrefix("quic://") else { return nil }
        let text = url.dropFirst("quic://".count).prefix { $0 != "/" }
        guard case .success(let authority) = Authority.parse(text, as: .hostAndOptionalPort), authority.address == nil else {
            throw ValidationError("quic:// needs the SNI host name, quic://host[:port], got \(url)")
        }
        return (authority.host, authority.port ?? UDPFlowPolicy.quicPort)
    }

    /// The full explanation of a QUIC flow.
    static func explain(serverName: String, destination: IPAddress, port: Int, policy: Policy, dns: DNSConfig, resolved: [IPAddress: String]) -> String {
        let (verdict, why) = decide(serverName: serverName, destination: destination, port: port, policy: policy, dns: dns, resolved: resolved)
        var lines = [
            "destination: quic \(serverName) to \(HostPort(address: destination, port: port)) (UDP)",
            "role:        \(policy.role.rawValue)",
            "mode:        \(policy.mode.rawValue)\(policy.audit ? " (audit)" : "")",
        ]
        lines.append("decision:    \(describe(verdict, audit: policy.audit))")
        lines.append("route:       \(verdict.map(\.reason) ?? "quic sni resolved / quic sni address mismatch")")
        lines.append("why:         \(why)")
        return lines.joined(separator: "\n")
    }

    /// The one line `explain tls://host:443` adds: the same name over HTTP/3.
    static func line(serverName: String, destination: IPAddress, policy: Policy, dns: DNSConfig, resolved: [IPAddress: String]) -> String {
        let (verdict, why) = decide(serverName: serverName, destination: destination, port: UDPFlowPolicy.quicPort, policy: policy, dns: dns, resolved: resolved)
        let decision = verdict == nil ? "depends on DNS" : describe(verdict, audit: policy.audit)
        return "quic:        UDP 443 with SNI \(serverName) to \(destination): \(decision): \(why)"
    }

    /// The verdict (nil when it waits on the sidecar resolving the SNI) and why, in words.
    static func decide(
        serverName: String, destination: IPAddress, port: Int, policy: Policy, dns: DNSConfig, resolved: [IPAddress: String]
    ) -> (UDPFlowVerdict?, String) {
        var learned = LearnedAddresses(dns)
        for (address, host) in resolved { learned.learn(address, hostname: host, ttl: learned.maximumTTL, now: 0) }
        let datagram = UDPDatagram(source: destination.isIPv4 ? .v4(0) : .v6(0, 0), sourcePort: 0, destination: destination, destinationPort: port)
        let udp = UDPFlowPolicy.decide(datagram, registry: policy.registry, learned: learned, now: 0, mode: policy.mode, dns: dns)
        guard UDPFlowPolicy.isDecidedBySNI(datagram, verdict: udp) else {
            let why = port == UDPFlowPolicy.quicPort
                ? "a protocol: UDP port allows \(destination):\(port) (\(udp.hostname ?? "by address")), so the flow is not read as QUIC"
                : "not UDP 443: the SNI is not read; decided as any UDP flow (\(udp.reason))"
            return (udp, why)
        }
        let step = UDPFlowPolicy.decideQUIC(
            datagram, clientHello: .clientHello(serverName: serverName), registry: policy.registry, learned: learned, now: 0, mode: policy.mode)
        switch step {
        case .resolve(let host):
            return (nil, "\(host) is registered for HTTPS/TLS on 443, but the pod did not resolve \(destination) from it: the sidecar resolves \(host) and allows the flow only if \(destination) is among its addresses (explain resolves nothing; --resolved \(destination)=\(host) decides as if the pod had)")
        case .verdict(let verdict):
            return (verdict, reason(verdict, destination: destination))
        }
    }

    private static func describe(_ verdict: UDPFlowVerdict?, audit: Bool) -> String {
        guard let verdict else { return "depends on DNS (see why)" }
        if verdict.allow { return "allow" }
        return audit ? "allow (audit mode; REGISTRY_ONLY would drop)" : "drop"
    }

    private static func reason(_ verdict: UDPFlowVerdict, destination: IPAddress) -> String {
        let sni = verdict.serverName ?? "(none)"
        switch verdict.reason {
        case "quic sni": return "\(sni) is registered for HTTPS/TLS on 443 and the pod resolved \(destination) from it"
        case "quic sni resolved": return "\(sni) is registered for HTTPS/TLS on 443 and \(destination) is one of its addresses"
        case "quic sni address mismatch": return "\(sni) is registered for HTTPS/TLS on 443, but \(destination) is not an address of it"
        case "quic sni unregistered": return "no ServiceEntry visible here registers \(sni) for HTTPS or TLS on 443"
        case "quic no sni": return "the ClientHello names no host"
        case "allow any": return "ALLOW_ANY lets unregistered UDP through"
        default: return verdict.reason
        }
    }
}
