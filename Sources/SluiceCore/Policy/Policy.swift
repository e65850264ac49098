/// Applies the registry and the outbound traffic policy to a connection: the one place where
/// Sluice decides whether traffic leaves, and how.
///
/// Matching follows Istio's listeners: an HTTP request matches by Host on HTTP ports, a TLS
/// connection by SNI on TLS/HTTPS ports, and anything may match by destination address on an
/// opaque (TCP) port, because Istio's TCP proxy takes whatever arrives on such a port.
public struct Policy: Sendable {
    /// What happens to unregistered destinations.
    public let mode: OutboundTrafficPolicyMode
    /// The registered services.
    public let registry: Registry
    /// The egress gateway registered traffic goes through, if any.
    public let gateway: EgressGatewayConfig?

    /// Creates a policy.
    public init(mode: OutboundTrafficPolicyMode, registry: Registry, gateway: EgressGatewayConfig?) {
        self.mode = mode
        self.registry = registry
        self.gateway = gateway
    }

    /// Decides what to do with one connection (or, for HTTP, one request).
    public func decide(_ facts: ConnectionFacts) -> Decision {
        let port = facts.port
        var requestedHost: String?
        var match: RegistryMatch?

        switch facts.kind {
        case .http(let host):
            let name = Registry.normaliseHost(host)
            if !name.isEmpty {
                requestedHost = name
                match = registry.lookup(host: name, port: port, families: [.http, .opaque])
                if match == nil, let literal = IPAddress(name) {
                    // Istio adds an entry's addresses to its virtual host domains: Host: <vip> matches.
                    match = registry.lookup(address: literal, port: port, families: [.http, .opaque])
                }
            }
            if match == nil {
                match = registry.lookup(address: facts.destination, port: port, families: .opaque)
            }
        case .tls(let serverName):
            let name = serverName.map(Registry.normaliseHost) ?? ""
            if !name.isEmpty {
                requestedHost = name
                match = registry.lookup(host: name, port: port, families: [.tls, .opaque])
            }
            if match == nil {
                match = registry.lookup(address: facts.destination, port: port, families: [.tls, .opaque])
            }
        case .tcp:
            match = registry.lookup(address: facts.destination, port: port)
        }

        guard let match else { return unregistered(facts, requestedHost: requestedHost) }
        return registered(facts, match: match, requestedHost: requestedHost)
    }

    // MARK: Registered

    private func registered(_ facts: ConnectionFacts, match: RegistryMatch, requestedHost: String?) -> Decision {
        let port = match.port
        let entry = match.entry
        let cluster = "outbound|\(port.number)||\(match.matchedHost)"
        let routeName = "\(match.matchedHost):\(port.number)"
        // A host match names the concrete host asked for; an address match only has the entry.
        let concreteHost: String? = match.isHostMatch ? requestedHost : nil
        let routingHost = concreteHost ?? match.matchedHost
        let why = Policy.describe(match)

        if let gateway, gateway.routes(host: routingHost) {
            let isHostRouted: Bool
            switch facts.kind {
            case .http, .tls: isHostRouted = concreteHost != nil
            case .tcp: isHostRouted = false
            }
            // The istio protocol routes by Host or SNI at the gateway; only CONNECT can carry
            // opaque TCP or a connection that matched by address alone.
            if gateway.protocol == .connect || isHostRouted {
                let authority = concreteHost.map { HostPort(host: $0, port: port.number) }
                    ?? HostPort(address: facts.destination.unmappedIPv4, port: facts.port)
                let gatewayPort: Int
                switch (gateway.protocol, facts.kind) {
                case (.connect, _): gatewayPort = gateway.connectPort
                case (.istio, .http): gatewayPort = gateway.httpPort
                case (.istio, _): gatewayPort = gateway.tlsPort
                }
                let target = UpstreamTarget.gateway(authority: authority, gatewayPort: gatewayPort, protocol: gateway.protocol)
                return Decision(
                    action: .forward(target), cluster: cluster, routeName: routeName, match: match,
                    reason: "\(why); egress gateway \(gateway.addresses.joined(separator: ", ")) routes \(routingHost), so it goes via gateway port \(gatewayPort) (\(gateway.protocol.rawValue)) for \(authority)")
            }
        }

        let target: UpstreamTarget
        let how: String
        let original = UpstreamTarget.originalDestination(facts.destination, facts.port)
        switch entry.resolution {
        case .none:
            target = original
            how = "resolution NONE forwards to the original destination \(HostPort(address: facts.destination, port: facts.port))"
        case .static:
            target = .endpoints(entry.endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
            how = "resolution STATIC forwards to its endpoints"
        case .dns, .dnsRoundRobin:
            if !entry.endpoints.isEmpty {
                target = .endpoints(entry.endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
                how = "resolution \(entry.resolution.rawValue) forwards to its endpoints"
            } else if let name = concreteHost ?? (match.matchedHost.hasPrefix("*.") ? nil : match.matchedHost) {
                let upstreamPort = port.targetPort ?? port.number
                target = .resolve(host: name, port: upstreamPort)
                how = "resolution \(entry.resolution.rawValue) resolves \(HostPort(host: name, port: upstreamPort))"
            } else {
                // A wildcard entry matched by address: there is no concrete name to resolve.
                target = original
                how = "resolution \(entry.resolution.rawValue) has no concrete name to resolve, so it forwards to the original destination"
            }
        }
        let direct = gateway == nil ? "" : (gateway?.routes(host: routingHost) == true
            ? " directly (the \(gateway?.protocol.rawValue ?? "") gateway cannot carry this traffic)"
            : " directly (not in the gateway's hosts)")
        return Decision(action: .forward(target), cluster: cluster, routeName: routeName, match: match,
                        reason: "\(why); \(how)\(direct)")
    }

    /// "ServiceEntry ns/name (file:line) registers host h on port 80 (HTTP)".
    static func describe(_ match: RegistryMatch) -> String {
        let entry = match.entry
        let port = "port \(match.port.number) (\(match.port.protocol))"
        let resource = "\(entry.resourceName) (\(entry.source))"
        switch match.matchedBy {
        case .exactHost, .wildcardHost:
            return "\(resource) registers host \(match.matchedHost) on \(port)"
        case .address(let cidr):
            return "\(resource) registers address \(cidr) on \(port)"
        case .anyAddress:
            return "\(resource) declares \(port) without addresses, which takes that port on every address"
        }
    }

    // MARK: Unregistered

    private func unregistered(_ facts: ConnectionFacts, requestedHost: String?) -> Decision {
        let what: String
        switch facts.kind {
        case .http:
            what = requestedHost.map { "host \($0)" } ?? "a request without Host to \(facts.destination)"
        case .tls:
            what = requestedHost.map { "SNI \($0) or address \(facts.destination)" } ?? "address \(facts.destination) (no SNI)"
        case .tcp:
            what = "address \(facts.destination)"
        }
        var reason = "no ServiceEntry registers \(what) on port \(facts.port) for \(kindName(facts.kind))"
        if let hint = mismatchHint(facts, requestedHost: requestedHost) { reason += " (\(hint))" }
        switch mode {
        case .allowAny:
            return Decision(
                action: .forward(.originalDestination(facts.destination, facts.port)),
                cluster: Decision.passthroughCluster, routeName: Decision.allowAnyRoute, match: nil,
                reason: reason + "; ALLOW_ANY passes it through to \(HostPort(address: facts.destination, port: facts.port))")
        case .registryOnly:
            return Decision(
                action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil,
                reason: reason + "; REGISTRY_ONLY blocks it")
        }
    }

    private func kindName(_ kind: TrafficKind) -> String {
        switch kind {
        case .http: return "HTTP"
        case .tls: return "TLS"
        case .tcp: return "TCP"
        }
    }

    /// When the host is registered on this port but for another protocol, say so: it is the
    /// usual reason a request that "is in the registry" is still blocked.
    private func mismatchHint(_ facts: ConnectionFacts, requestedHost: String?) -> String? {
        guard let requestedHost, let other = registry.lookup(host: requestedHost, port: facts.port) else { return nil }
        return "\(Policy.describe(other)), which \(kindName(facts.kind)) traffic does not match"
    }
}
