/// The one decision stage: applies the registry and the outbound traffic policy to a
/// connection (or, for HTTP, a request), for the sidecar and the gateway alike. The listener,
/// the sniffer, the HTTP path, both CONNECT handlers and `sluice explain` all call it, and
/// nothing else decides.
///
/// Matching follows Istio's listeners (the ServiceEntry reference and the sidecar's
/// generated listeners), not a looser reading of the YAML:
///
/// | port protocol | entry has `addresses` | what matches it at the sidecar |
/// |---|---|---|
/// | HTTP, HTTP2, GRPC | either | HTTP requests by Host (`host` or `host:port`), or a Host naming one of its addresses |
/// | TLS, HTTPS | no | TLS by SNI, on any destination address |
/// | TLS, HTTPS | one IP | TLS to that IP (a VIP identifies the service; SNI is not needed) |
/// | TLS, HTTPS | a CIDR | TLS to an address in it whose SNI is one of the hosts |
/// | TCP, MONGO, MYSQL… | no | anything on that port, any address (Istio's `0.0.0.0:port` TCP listener) |
/// | TCP, MONGO, MYSQL… | yes | anything to those addresses; `hosts` are ignored |
/// | unset (detected) | either | HTTP by Host, TLS by SNI (or by address when it has one), other bytes by address |
///
/// Bytes of another protocol than the port's are not forwarded under REGISTRY_ONLY: HTTP on a
/// TLS port is decided by Host like any HTTP, TLS on an HTTP port by SNI, opaque bytes on an
/// HTTP or TLS port by address alone. An HTTP request on a port that only opaque or TLS
/// entries declare has no HTTP listener to answer 502: like unregistered TCP it is closed.
public struct Policy: Sendable {
    /// What happens to unregistered destinations.
    public let mode: OutboundTrafficPolicyMode
    /// The registered services (those visible to this workload's namespace).
    public let registry: Registry
    /// The egress gateway registered traffic goes through, if any (sidecar only).
    public let gateway: EgressGatewayConfig?
    /// Sidecar or gateway.
    public let role: ProxyRole
    /// Audit mode: a REGISTRY_ONLY denial is decided, logged and counted as one, but the
    /// traffic goes where ALLOW_ANY would send it.
    public let audit: Bool
    /// The VirtualService routes, Gateway servers and Sidecar settings compiled for this
    /// proxy (`RouteTable.compile`); nil when there are none, and then every decision is
    /// exactly the one made without routing objects (one branch on the hot path).
    public var routes: RouteTable? {
        didSet { if routes?.isEmpty == true { routes = nil } }
    }
    /// The DestinationRules that apply to this proxy (`RouteTable.destinationRules`), also
    /// when no route needs the table: their traffic policy goes with registered destinations
    /// that no VirtualService routes (`Decision.clusterPolicy`).
    public var destinationRules: [DestinationRule] = []
    /// Picks a number in `0..<total` for a weighted choice among destinations; injected so
    /// that tests are deterministic.
    public var weightPicker: @Sendable (Int) -> Int = { Int.random(in: 0..<max($0, 1)) }
    /// The names behind destination addresses, when the DNS proxy sees the pod's DNS: then
    /// opaque ports of entries without addresses match only where the pod resolved (or the
    /// proxy allocated) one of their hosts. Nil: Istio's meaning, every address.
    public var resolvedNames: ResolvedNames?

    /// Creates a policy. A gateway never forwards to another gateway, so `gateway` is
    /// ignored for the gateway role.
    public init(
        mode: OutboundTrafficPolicyMode, registry: Registry, gateway: EgressGatewayConfig?, role: ProxyRole = .sidecar,
        audit: Bool = false
    ) {
        self.mode = mode
        self.registry = registry
        self.gateway = role == .sidecar ? gateway : nil
        self.role = role
        self.audit = audit
        self.routes = nil
        self.resolvedNames = nil
    }

    /// Families whose ports Istio binds to an entry's addresses (HTTP ports stay on 0.0.0.0).
    private static let addressBound: ProtocolFamilies = [.opaque, .tls, .detected]

    // MARK: Before the first byte

    /// At accept, before reading: the decision when the destination address and port alone
    /// decide, whatever the bytes (an opaque port by address, or an opaque port on every
    /// address that no name-routed entry shares), so that server-first protocols (SMTP, MySQL,
    /// SSH banners) work. Nil: read the first bytes and call `decide`.
    public func decideBeforeReading(destination: IPAddress, port: Int) -> Decision? {
        guard role == .sidecar else { return nil }
        if let routes, let routed = routedTCP(destination: destination, port: port, routes: routes) { return routed }
        let subject = Subject(traffic: .tcp, port: port, requestedHost: nil, destination: destination)
        if let match = registry.lookup(address: destination, port: port, families: Self.addressBound, anyAddress: false) {
            return match.port.protocol.isOpaque ? registered(subject, match: match) : nil
        }
        guard registry.wildcardFamilies(port: port).isDisjoint(with: [.http, .tls, .detected]),
              let match = lookup(address: destination, port: port, families: .opaque)
        else { return nil }
        return registered(subject, match: match)
    }

    // MARK: After sniffing

    /// Decides one connection (TLS, opaque TCP) or one HTTP request from what was read.
    public func decide(_ facts: ConnectionFacts) -> Decision {
        if let routes, let routed = routed(facts, routes: routes) { return routed }
        let port = facts.port
        let destination = facts.destination
        switch facts.kind {
        case .tcp:
            let subject = Subject(traffic: .tcp, port: port, requestedHost: nil, destination: destination)
            guard role == .sidecar else {
                return unregistered(subject, note: "a gateway routes TLS by SNI and HTTP by Host; these bytes are neither")
            }
            if let match = registry.lookup(address: destination, port: port, families: Self.addressBound, anyAddress: false) {
                if match.port.protocol.isTLS {
                    return unregistered(subject, note: "\(Policy.describe(match)), and these bytes are not TLS")
                }
                return registered(subject, match: match)
            }
            if let match = lookup(address: destination, port: port, families: [.opaque, .detected]) {
                return registered(subject, match: match)
            }
            return unregistered(subject, note: resolvedNamesNote(destination: destination, port: port, families: [.opaque, .detected]))

        case .tls(let serverName):
            let sni = serverName.flatMap { Authority($0, as: .hostOnly) }
            let subject = Subject(traffic: .tls, port: port, requestedHost: sni?.host, destination: destination)
            if role == .sidecar,
               let match = registry.lookup(address: destination, port: port, families: Self.addressBound, anyAddress: false) {
                switch match.matchedBy {
                case .address(let cidr) where match.port.protocol.isTLS && cidr.prefixLength < cidr.address.bitWidth:
                    // A CIDR: Istio matches the destination range and the SNI together.
                    if let sni, let byName = registry.lookup(host: sni.host, port: port, families: .tls),
                       byName.entry == match.entry {
                        return registered(subject, match: byName)
                    }
                default:
                    // Opaque and detected ports by address take any bytes; a TLS port bound to
                    // one IP is identified by that IP (Istio does no SNI match on a VIP).
                    return registered(subject, match: match)
                }
            }
            if let sni {
                // At the sidecar an entry with addresses has its TLS port bound to them: its
                // hosts do not match other destinations. The gateway has no destination but itself.
                let addressed = role == .gateway
                if let match = registry.lookup(host: sni.host, port: port, families: [.tls, .detected], addressed: addressed) {
                    return registered(subject, match: match)
                }
            }
            if role == .sidecar, let match = lookup(address: destination, port: port, families: .opaque) {
                // The port is open to opaque bytes on every address; TLS gains nothing more there.
                return registered(subject, match: match)
            }
            return unregistered(subject)

        case .http(let authority):
            let subject = Subject(traffic: .http, port: port, requestedHost: authority.host, destination: destination)
            var bound: RegistryMatch?
            if role == .sidecar {
                bound = registry.lookup(address: destination, port: port, families: Self.addressBound, anyAddress: false)
                if let bound, bound.port.protocol.isOpaque { return registered(subject, match: bound) }
            }
            // Istio's route domains for a port P are `host` and `host:P`: a Host naming another
            // port matches no entry on this one.
            if authority.port == nil || authority.port == port {
                // HTTP ports match by Host on any address (their listener is 0.0.0.0:port); a
                // detected port of an entry with addresses is bound to them, so its hosts
                // match only there.
                let addressed = role == .gateway
                if let match = registry.lookup(host: authority.host, port: port, families: .http)
                    ?? registry.lookup(host: authority.host, port: port, families: .detected, addressed: addressed) {
                    return registered(subject, match: match)
                }
                if let bound, bound.port.protocol.family == .detected,
                   let match = registry.lookup(host: authority.host, port: port, families: .detected),
                   match.entry == bound.entry {
                    return registered(subject, match: match)
                }
                if let literal = authority.address,
                   let match = registry.lookup(address: literal, port: port, families: [.http, .detected], anyAddress: false) {
                    // Istio adds an entry's addresses to its virtual host domains: Host: <vip> matches.
                    return registered(subject, match: match)
                }
            }
            if role == .sidecar, registry.wildcardFamilies(port: port).isDisjoint(with: [.http, .detected]),
               let match = lookup(address: destination, port: port, families: .opaque) {
                // No HTTP listener on this port: its TCP listener on every address takes it.
                return registered(subject, match: match)
            }
            return unregistered(subject, hostPortMismatch: authority.port.map { $0 != port } ?? false)
        }
    }

    /// Decides an HTTP CONNECT tunnel to `target` (the gateway's CONNECT listener, or an app's
    /// CONNECT at the sidecar).
    ///
    /// A tunnel carries bytes of any protocol, so a registered host or address matches on a
    /// port of any protocol — except that an opaque port of an entry with addresses is matched
    /// by address only, as everywhere. Where a connection would go to its original destination
    /// (passthrough, resolution NONE), a tunnel goes to its target: an IP as is, a name resolved.
    public func decide(tunnelTo target: Authority) -> Decision {
        let port = target.port ?? 0
        let subject = Subject(
            traffic: .tunnel, port: port, requestedHost: target.address == nil ? target.host : nil,
            destination: target.address, tunnelTarget: target)
        let match: RegistryMatch?
        if let literal = target.address, resolvedNames != nil {
            // Under the DNS proxy an opaque or detected port of an entry without addresses
            // is taken only at addresses the pod resolved from its hosts, as for a captured
            // connection (`decide(_:)`): a tunnel to an IP literal is no way around that.
            match = registry.lookup(address: literal, port: port, families: .all, anyAddress: false)
                ?? lookup(address: literal, port: port, families: [.opaque, .detected])
                ?? registry.lookup(address: literal, port: port, families: [.http, .tls])
        } else if let literal = target.address {
            match = registry.lookup(address: literal, port: port, families: .all)
        } else {
            match = registry.lookup(host: target.host, port: port, families: [.http, .tls, .detected])
                ?? registry.lookup(host: target.host, port: port, families: .opaque, addressed: false)
        }
        guard let match else { return unregistered(subject) }
        return registered(subject, match: match)
    }

    // MARK: Registered

    /// What the decision needs to know about the traffic, whatever its kind.
    struct Subject {
        enum Traffic: String {
            case http = "HTTP", tls = "TLS", tcp = "TCP", tunnel = "CONNECT"
        }
        var traffic: Traffic
        var port: Int
        /// The normalised Host, SNI or tunnel host name; nil when there is none.
        var requestedHost: String?
        /// The original destination (the target's address for a tunnel); nil when there is none.
        var destination: IPAddress?
        /// A CONNECT's target.
        var tunnelTarget: Authority?

        /// Where the client was going, as host:port, for messages and CONNECT authorities.
        var original: HostPort {
            if let tunnelTarget { return HostPort(host: tunnelTarget.host, port: port) }
            return HostPort(host: destination?.description ?? "?", port: port)
        }
    }

    /// Where passthrough and resolution NONE send the traffic: the original destination at the
    /// sidecar; at the gateway (which has none) or for a tunnel, the name asked for, resolved.
    func originalTarget(_ subject: Subject) -> UpstreamTarget? {
        if subject.traffic == .tunnel || role == .gateway {
            if let destination = subject.destination, subject.traffic == .tunnel {
                return .originalDestination(destination, subject.port)
            }
            return subject.requestedHost.map { .resolve(host: $0, port: subject.port) }
        }
        return subject.destination.map { .originalDestination($0, subject.port) }
    }

    func registered(_ subject: Subject, match: RegistryMatch) -> Decision {
        let port = match.port
        let cluster = "outbound|\(port.number)||\(match.matchedHost)"
        let routeName = "\(match.matchedHost):\(port.number)"
        // A host match names the concrete host asked for; an address match only has the entry.
        let concreteHost: String? = match.isHostMatch ? subject.requestedHost : match.resolvedName
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
                var decision = Decision(
                    action: .forward(target), cluster: cluster, routeName: routeName, match: match,
                    explain: {
                        "\(Policy.describe(match)); egress gateway \(gateway.addresses.joined(separator: ", ")) routes \(routingHost), so it goes via gateway port \(gatewayPort) (\(gateway.protocol.rawValue)) for \(authority)"
                    })
                if gateway.protocol == .istio { decision.upstreamTLS = gateway.tls.map(UpstreamTLS.istioMutual) }
                return decision
            }
        }

        let target: UpstreamTarget
        let how: @Sendable () -> String
        switch directTarget(subject, match: match, concreteHost: concreteHost) {
        case .success(let direct):
            target = direct.target
            how = direct.how
        case .failure(let refusal):
            return Decision(
                action: .deny, cluster: cluster, routeName: routeName, match: match, denial: denial(for: subject),
                explain: { "\(Policy.describe(match)); \(refusal.reason)" })
        }
        let gateway = self.gateway
        let tls = routes.flatMap { registeredTLS(match: match, host: routingHost, routes: $0) }
        var decision = Decision(action: .forward(target), cluster: cluster, routeName: routeName, match: match, explain: {
            var direct = ""
            if let gateway {
                direct = gateway.routes(host: routingHost)
                    ? " directly (the \(gateway.protocol.rawValue) gateway cannot carry this traffic)"
                    : " directly (not in the gateway's hosts)"
            }
            return "\(Policy.describe(match)); \(how())\(direct)" + (tls.map { "; upstream TLS \($0)" } ?? "")
        })
        decision.upstreamTLS = tls
        if !destinationRules.isEmpty { decision.clusterPolicy = clusterPolicy(host: routingHost, port: port.number) }
        return decision
    }

    /// The DestinationRule `tls` for a registered destination reached without a route (the
    /// rule for the host, at the service port the client used: Istio's "Egress TLS
    /// Origination" sets it on port 80 of an entry whose port 80 targets 443).
    private func registeredTLS(match: RegistryMatch, host: String, routes: RouteTable) -> UpstreamTLS? {
        guard !routes.destinationRules.isEmpty, let rule = routes.destinationRule(for: host) else { return nil }
        return UpstreamTLS.resolve(rule.policy(subset: nil, port: match.port.number).tls, host: host,
                                   entrySubjectAltNames: match.entry.subjectAltNames)
    }

    /// Why a registered match has no upstream.
    struct Refusal: Error {
        var reason: String
    }

    /// Where a registered match sends traffic by its resolution, without the egress gateway:
    /// its endpoints (those carrying `subsetLabels`, for a DestinationRule subset), the name
    /// resolved, or the original destination. Inlined: on the path without routing objects it
    /// must cost what the code it came from cost.
    @inline(__always)
    func directTarget(
        _ subject: Subject, match: RegistryMatch, concreteHost: String?, subsetLabels: [String: String] = [:]
    ) -> Result<(target: UpstreamTarget, how: @Sendable () -> String), Refusal> {
        let role = self.role
        let target: UpstreamTarget
        let how: @Sendable () -> String
        let original = subject.original
        let port = match.port
        let entry = match.entry
        let endpoints = subsetLabels.isEmpty ? entry.reachableEndpoints : entry.reachableEndpoints.filter { endpoint in
            subsetLabels.allSatisfy { endpoint.labels[$0.key] == $0.value }
        }
        switch entry.resolution {
        case .none:
            guard let passthrough = originalTarget(subject) else {
                return .failure(Refusal(reason: "resolution NONE forwards to the original destination, but a gateway has none and no host name was given"))
            }
            target = passthrough
            how = {
                if case .resolve(let host, let port) = passthrough, role == .gateway {
                    return "resolution NONE forwards to the original destination; a gateway has none, so it resolves \(HostPort(host: host, port: port))"
                }
                return "resolution NONE forwards to the original destination \(original)"
            }
        case .static:
            target = .endpoints(endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
            how = { endpoints.isEmpty
                ? "resolution STATIC forwards to its endpoints, and it has none a sidecar can reach (no healthy upstream)"
                : "resolution STATIC forwards to its endpoints" }
        case .dns, .dnsRoundRobin:
            if !entry.endpoints.isEmpty {
                target = .endpoints(endpoints.map { HostPort(host: $0.address, port: $0.upstreamPort(for: port)) })
                how = { "resolution \(entry.resolution.rawValue) forwards to its endpoints" }
            } else if let name = concreteHost ?? (match.matchedHost.hasPrefix("*") ? nil : match.matchedHost) {
                let upstreamPort = port.targetPort ?? port.number
                target = .resolve(host: name, port: upstreamPort)
                how = { "resolution \(entry.resolution.rawValue) resolves \(HostPort(host: name, port: upstreamPort))" }
            } else if let passthrough = originalTarget(subject) {
                // A wildcard entry matched by address: there is no concrete name to resolve.
                target = passthrough
                how = { "resolution \(entry.resolution.rawValue) has no concrete name to resolve, so it forwards to the original destination" }
            } else {
                return .failure(Refusal(reason: "a wildcard entry has no name to resolve and there is no original destination"))
            }
        }
        return .success((target, how))
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
        case .resolvedName(let name, let address, allocated: true):
            return "\(resource) registers host \(match.matchedHost) on \(port), and \(address) is the address the DNS proxy allocated to \(name) (dns.autoAllocate)"
        case .resolvedName(let name, let address, allocated: false):
            return "\(resource) registers host \(match.matchedHost) on \(port), and the pod resolved \(address) from \(name) through the DNS proxy"
        }
    }

    // MARK: Unregistered

    /// How this process refuses `subject`.
    func denial(for subject: Subject) -> Decision.Denial {
        switch (subject.traffic, role) {
        case (.tunnel, _): return .httpStatus(403)
        case (.http, .gateway): return .httpStatus(404)
        case (.http, .sidecar):
            // 502 comes from an HTTP listener's block_all route. A port that only opaque or TLS
            // entries declare has none: the request meets the black hole, like TCP.
            let declared = registry.declaredFamilies(port: subject.port)
            if declared.isEmpty || !registry.wildcardFamilies(port: subject.port).isDisjoint(with: [.http, .detected]) {
                return .httpStatus(502)
            }
            return .close
        case (.tls, _), (.tcp, _): return .close
        }
    }

    func unregistered(_ subject: Subject, note: String? = nil, hostPortMismatch: Bool = false) -> Decision {
        let policy = self
        let reason: @Sendable () -> String = {
            let what: String
            let address = subject.destination.map(\.description) ?? "?"
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
            if hostPortMismatch { reason += " (the Host names another port than the \(subject.port) it was sent to)" }
            if let note { reason += " (\(note))" } else if let hint = policy.mismatchHint(subject) { reason += " (\(hint))" }
            return reason
        }
        switch mode {
        case .allowAny:
            if let proxy = routes?.sidecar?.egressProxy, role == .sidecar, subject.traffic != .tunnel {
                return egressProxyDecision(subject, proxy: proxy, reason: reason)
            }
            guard let passthrough = originalTarget(subject) else { break }
            let original = subject.original
            return Decision(
                action: .forward(passthrough), cluster: Decision.passthroughCluster,
                routeName: Decision.allowAnyRoute, match: nil,
                explain: { reason() + "; ALLOW_ANY passes it through to \(original)" })
        case .registryOnly:
            break
        }
        let denial = denial(for: subject)
        let mode = self.mode
        if audit, mode == .registryOnly, let passthrough = originalTarget(subject) {
            // Everything a denial logs (route, cluster, Host/SNI), and the traffic still flows.
            let original = subject.original
            var decision = Decision(
                action: .forward(passthrough), cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute,
                match: nil, denial: denial,
                explain: { reason() + "; REGISTRY_ONLY would block it (\(denial)), but audit mode lets it through to \(original)" })
            decision.audited = true
            return decision
        }
        return Decision(
            action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil,
            denial: denial,
            explain: {
                mode == .registryOnly
                    ? reason() + "; REGISTRY_ONLY blocks it"
                    : reason() + "; ALLOW_ANY has no original destination to pass it to"
            })
    }

    /// When the host is registered on this port but for another protocol (or only by address),
    /// say so: it is the usual reason a request that "is in the registry" is still blocked.
    private func mismatchHint(_ subject: Subject) -> String? {
        guard let host = subject.requestedHost, let other = registry.lookup(host: host, port: subject.port) else { return nil }
        if other.port.protocol.family == Self.family(of: subject.traffic), !other.entry.addresses.isEmpty {
            return "\(Policy.describe(other)), but with addresses its port is matched by address, not by name"
        }
        if other.port.protocol.isOpaque, !other.entry.addresses.isEmpty {
            return "\(Policy.describe(other)); a \(other.port.protocol) port with addresses is matched by destination address only, its hosts are ignored"
        }
        return "\(Policy.describe(other)), which \(subject.traffic.rawValue) traffic does not match"
    }

    private static func family(of traffic: Subject.Traffic) -> ProtocolFamilies {
        switch traffic {
        case .http: return .http
        case .tls: return .tls
        case .tcp, .tunnel: return .opaque
        }
    }
}

extension ServiceEntry {
    /// Endpoints a sidecar can dial: `unix://` sockets are the client host's, not reachable
    /// through a pod's network, and are left out.
    public var reachableEndpoints: [WorkloadEndpoint] {
        endpoints.filter { !$0.address.hasPrefix("unix://") }
    }
}
