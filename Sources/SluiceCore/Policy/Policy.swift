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

    /// Decides what to do with one intercepted connection (or, for HTTP, one request).
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

        let original = HostPort(address: facts.destination, port: port)
        let subject: Subject
        switch facts.kind {
        case .http:
            subject = Subject(traffic: .http, port: port, requestedHost: requestedHost, original: original,
                              originalTarget: .originalDestination(facts.destination, port))
        case .tls:
            subject = Subject(traffic: .tls, port: port, requestedHost: requestedHost, original: original,
                              originalTarget: .originalDestination(facts.destination, port))
        case .tcp:
            subject = Subject(traffic: .tcp, port: port, requestedHost: nil, original: original,
                              originalTarget: .originalDestination(facts.destination, port))
        }
        guard let match else { return unregistered(subject, destination: facts.destination) }
        return registered(subject, match: match)
    }

    /// Decides on an HTTP CONNECT tunnel to `target` (the gateway's CONNECT listener).
    ///
    /// A tunnel carries bytes of any protocol, so a registered host or address matches on a
    /// port of any protocol. A name target matches by host, an IP target by address. Where a
    /// connection would go to its original destination (passthrough, resolution NONE), a tunnel
    /// goes to its target: an IP as is, a name resolved.
    public func decide(tunnelTo target: HostPort) -> Decision {
        let name = Registry.normaliseHost(target.host)
        let literal = IPAddress(name)
        let match: RegistryMatch?
        let originalTarget: UpstreamTarget
        if let literal {
            match = registry.lookup(address: literal, port: target.port)
            originalTarget = .originalDestination(literal, target.port)
        } else {
            match = name.isEmpty ? nil : registry.lookup(host: name, port: target.port)
            originalTarget = .resolve(host: name, port: target.port)
        }
        let original = literal.map { HostPort(address: $0, port: target.port) } ?? HostPort(host: name, port: target.port)
        let subject = Subject(traffic: .tunnel, port: target.port, requestedHost: literal == nil ? name : nil,
                              original: original, originalTarget: originalTarget)
        guard let match else { return unregistered(subject, destination: literal) }
        return registered(subject, match: match)
    }

    // MARK: Registered

    /// What the decision needs to know about the traffic, whatever its kind.
    private struct Subject {
        enum Traffic: String {
            case http = "HTTP", tls = "TLS", tcp = "TCP", tunnel = "CONNECT"
        }
        var traffic: Traffic
        var port: Int
        /// The normalised Host, SNI or tunnel host name; nil when there is none.
        var requestedHost: String?
        /// Where the client was going, as host:port, for messages and CONNECT authorities.
        var original: HostPort
        /// Where passthrough and resolution NONE send it.
        var originalTarget: UpstreamTarget
    }

    private func registered(_ subject: Subject, match: RegistryMatch) -> Decision {
        let port = match.port
        let entry = match.entry
        let cluster = "outbound|\(port.number)||\(match.matchedHost)"
        let routeName = "\(match.matchedHost):\(port.number)"
        // A host match names the concrete host asked for; an address match only has the entry.
        let concreteHost: String? = match.isHostMatch ? subject.requestedHost : nil
        let routingHost = concreteHost ?? match.matchedHost

        if let gateway, gateway.routes(host: routingHost) {
            // The istio protocol routes by Host or SNI at the gateway; only CONNECT can carry
            // opaque TCP or a connection that matched by address alone.
            let hostRouted = concreteHost != nil && (subject.traffic == .http || subject.traffic == .tls)
            if gateway.protocol == .connect || hostRouted {
                let authority = concreteHost.map { HostPort(host: $0, port: port.number) } ?? subject.original
                let gatewayPort: Int
                switch (gateway.protocol, subject.traffic) {
                case (.connect, _): gatewayPort = gateway.connectPort
                case (.istio, .http): gatewayPort = gateway.httpPort
                case (.istio, _): gatewayPort = gateway.tlsPort
                }
                let target = UpstreamTarget.gateway(authority: authority, gatewayPort: gatewayPort, protocol: gateway.protocol)
                return Decision(
                    action: .forward(target), cluster: cluster, routeName: routeName, match: match,
                    explain: {
                        "\(Policy.describe(match)); egress gateway \(gateway.addresses.joined(separator: ", ")) routes \(routingHost), so it goes via gateway port \(gatewayPort) (\(gateway.protocol.rawValue)) for \(authority)"
                    })
            }
        }

        let target: UpstreamTarget
        let how: @Sendable () -> String
        let original = subject.original
        switch entry.resolution {
        case .none:
            target = subject.originalTarget
            how = { "resolution NONE forwards to the original destination \(original)" }
        case .static:
            target = .endpoints(entry.endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
            how = { "resolution STATIC forwards to its endpoints" }
        case .dns, .dnsRoundRobin:
            if !entry.endpoints.isEmpty {
                target = .endpoints(entry.endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
                how = { "resolution \(entry.resolution.rawValue) forwards to its endpoints" }
            } else if let name = concreteHost ?? (match.matchedHost.hasPrefix("*.") ? nil : match.matchedHost) {
                let upstreamPort = port.targetPort ?? port.number
                target = .resolve(host: name, port: upstreamPort)
                how = { "resolution \(entry.resolution.rawValue) resolves \(HostPort(host: name, port: upstreamPort))" }
            } else {
                // A wildcard entry matched by address: there is no concrete name to resolve.
                target = subject.originalTarget
                how = { "resolution \(entry.resolution.rawValue) has no concrete name to resolve, so it forwards to the original destination" }
            }
        }
        let gateway = self.gateway
        return Decision(action: .forward(target), cluster: cluster, routeName: routeName, match: match, explain: {
            var direct = ""
            if let gateway {
                direct = gateway.routes(host: routingHost)
                    ? " directly (the \(gateway.protocol.rawValue) gateway cannot carry this traffic)"
                    : " directly (not in the gateway's hosts)"
            }
            return "\(Policy.describe(match)); \(how())\(direct)"
        })
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

    private func unregistered(_ subject: Subject, destination: IPAddress?) -> Decision {
        let policy = self
        let reason: @Sendable () -> String = {
            let what: String
            let address = destination.map(\.description) ?? "?"
            switch subject.traffic {
            case .http:
                what = subject.requestedHost.map { "host \($0)" } ?? "a request without Host to \(address)"
            case .tls:
                what = subject.requestedHost.map { "SNI \($0) or address \(address)" } ?? "address \(address) (no SNI)"
            case .tcp:
                what = "address \(address)"
            case .tunnel:
                what = subject.requestedHost.map { "host \($0)" } ?? "address \(address)"
            }
            var reason = "no ServiceEntry registers \(what) on port \(subject.port) for \(subject.traffic.rawValue)"
            if let hint = policy.mismatchHint(subject) { reason += " (\(hint))" }
            return reason
        }
        switch mode {
        case .allowAny:
            return Decision(
                action: .forward(subject.originalTarget), cluster: Decision.passthroughCluster,
                routeName: Decision.allowAnyRoute, match: nil,
                explain: { reason() + "; ALLOW_ANY passes it through to \(subject.original)" })
        case .registryOnly:
            return Decision(
                action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil,
                explain: { reason() + "; REGISTRY_ONLY blocks it" })
        }
    }

    /// When the host is registered on this port but for another protocol, say so: it is the
    /// usual reason a request that "is in the registry" is still blocked.
    private func mismatchHint(_ subject: Subject) -> String? {
        guard let host = subject.requestedHost, let other = registry.lookup(host: host, port: subject.port) else { return nil }
        return "\(Policy.describe(other)), which \(subject.traffic.rawValue) traffic does not match"
    }
}
