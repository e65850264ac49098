/// Deciding with the compiled routes (`RouteTable`): VirtualService http, tls and tcp routes at
/// the sidecar (bound to `mesh`) and at the gateway (bound to its Gateways' servers), ASM's
/// blocked hosts, and the Sidecar's egressProxy. Each function returns nil when no routing
/// object has a say, and the registry decides as it always has.
extension Policy {
    func routed(_ facts: ConnectionFacts, routes: RouteTable) -> Decision? {
        switch facts.kind {
        case .http(let authority):
            return routedHTTP(authority: authority, facts: facts, routes: routes)
        case .tls(let serverName):
            let sni = serverName.flatMap { Authority($0, as: .hostOnly) }?.host
            return routedTLS(sni: sni, facts: facts, routes: routes)
        case .tcp:
            if role == .sidecar { return routedTCP(destination: facts.destination, port: facts.port, routes: routes) }
            return routedGatewayTCP(facts: facts, routes: routes)
        }
    }

    // MARK: HTTP

    private func routedHTTP(authority: Authority, facts: ConnectionFacts, routes: RouteTable) -> Decision? {
        let port = facts.port
        let host = authority.host
        let subject = Subject(traffic: .http, port: port, requestedHost: host, destination: facts.destination)
        var candidates: [RouteTable.Route] = []
        var gatewayServers: [RouteTable.Server] = []
        switch role {
        case .sidecar:
            // Istio's route domains at a sidecar for port P are `host` and `host:P`.
            if let named = authority.port, named != port { return nil }
            if let blocked = blockedDecision(host: host, subject: subject, routes: routes) { return blocked }
        case .gateway:
            // A gateway's virtual hosts take the host whatever port the Host names (`host:*`).
            gatewayServers = routes.servers.filter { $0.port == port && $0.isHTTP }
            guard !gatewayServers.isEmpty else { return nil }
            candidates = routes.httpRoutes.filter { route in
                gatewayServers.contains { $0.admits(host: host, virtualServiceNamespace: route.virtualService.namespace) }
            }
        }
        let found: RouteTable.HTTPIndex.Service?
        if role == .sidecar {
            found = routes.httpIndex.lookup(host)
        } else {
            // All of the best VirtualService's routes are candidates (a server admits a host by
            // the VirtualService's namespace): its entry in the index, compiled once.
            found = Self.bestVirtualService(candidates, host: host).flatMap { service in
                routes.httpIndex.positions[service].map { routes.httpIndex.services[$0] }
            }
        }
        guard let found else {
            return role == .gateway ? noRoute(subject, why: "no VirtualService bound to the Gateway on port \(port) has host \(host)") : nil
        }
        let service = found.service
        // Routes whose matches all name another port do not exist on this port.
        let (anyOnPort, dependent) = found.matcher.routes(onPort: port)
        guard anyOnPort else {
            return role == .gateway ? noRoute(subject, why: "\(service) has no http route for port \(port)") : nil
        }
        let chosen: HTTPRouteMatcher.Choice?
        if let view = facts.request {
            chosen = HTTPMatchInput.with(view) { found.matcher.firstMatch(port: port, authority: authority, input: $0) }
        } else {
            chosen = HTTPMatchInput.withoutRequest { found.matcher.firstMatch(port: port, authority: authority, input: $0) }
        }
        var decision: Decision
        if let chosen {
            decision = self.decision(for: found.routes[chosen.position], matchIndex: chosen.matchIndex, subject: subject,
                                     defaultPort: authority.port ?? port, routes: routes, dependsOnRequest: dependent, previous: facts.previous)
        } else {
            decision = noRoute(subject, why: "\(service) has routes for \(host) on port \(port), and none matches the request")
            decision.dependsOnlyOnAuthority = !dependent
        }
        if dependent {
            decision.requestRouter = HTTPRequestRouter(service: service, matcher: found.matcher, port: port, authority: authority)
        }
        return decision
    }

    /// The VirtualService whose host matches `host` most specifically; the first loaded
    /// among equals (Istio keeps the oldest).
    static func bestVirtualService(_ routes: [RouteTable.Route], host: String) -> RoutingObjectID? {
        var best: (id: RoutingObjectID, rank: Int)?
        for route in routes {
            guard let pattern = route.hosts.filter({ HostPattern.matches($0, host) }).max(by: { HostPattern.specificity($0) < HostPattern.specificity($1) }) else { continue }
            let rank = HostPattern.specificity(pattern)
            if rank > best?.rank ?? -1 { best = (route.virtualService, rank) }
        }
        return best?.id
    }

    // MARK: TLS and TCP

    private func routedTLS(sni: String?, facts: ConnectionFacts, routes: RouteTable) -> Decision? {
        let port = facts.port
        let subject = Subject(traffic: .tls, port: port, requestedHost: sni, destination: facts.destination)
        var candidates = routes.tlsRoutes
        if role == .gateway {
            let servers = routes.servers.filter { $0.port == port && $0.isTLSPassthrough }
            guard !servers.isEmpty else { return nil }
            guard let sni else { return noRoute(subject, why: "a PASSTHROUGH server routes by SNI, and there is none") }
            candidates = candidates.filter { route in
                servers.contains { $0.admits(host: sni, virtualServiceNamespace: route.virtualService.namespace) }
            }
        } else if let sni, let blocked = blockedDecision(host: sni, subject: subject, routes: routes) {
            return blocked
        }
        for route in candidates {
            if let position = route.l4Matches.firstIndex(where: { match in
                (match.port == nil || match.port == port)
                    && (match.destinationSubnets.isEmpty || role == .gateway || match.destinationSubnets.contains { $0.contains(facts.destination) })
                    && (match.sniHosts.isEmpty ? sni.map { host in route.hosts.contains { HostPattern.matches($0, host) } } ?? false
                        : sni.map { host in match.sniHosts.contains { HostPattern.matches($0, host) } } ?? false)
            }) {
                return decision(for: route, matchIndex: route.matchIndices[position], subject: subject, defaultPort: port, routes: routes, dependsOnRequest: false)
            }
        }
        return role == .gateway ? noRoute(subject, why: "no tls route bound to the Gateway on port \(port) matches SNI \(sni ?? "(none)")") : nil
    }

    /// A tcp route at the sidecar: its match's port and `destinationSubnets`, or — without
    /// subnets — a VirtualService host that the registry places at the destination address.
    func routedTCP(destination: IPAddress, port: Int, routes: RouteTable) -> Decision? {
        guard !routes.tcpRoutes.isEmpty else { return nil }
        let subject = Subject(traffic: .tcp, port: port, requestedHost: nil, destination: destination)
        let registered = lookup(address: destination, port: port, families: .all)
        for route in routes.tcpRoutes {
            let hostHere = registered.map { match in route.hosts.contains { HostPattern.matches($0, match.matchedHost) } } ?? false
            let matched: Int?? = route.l4Matches.isEmpty ? (hostHere ? .some(nil) : nil) : route.l4Matches.firstIndex(where: { match in
                (match.port == nil || match.port == port)
                    && (match.destinationSubnets.isEmpty ? hostHere : match.destinationSubnets.contains { $0.contains(destination) })
            }).map { .some(route.matchIndices[$0]) }
            guard let matchIndex = matched else { continue }
            return decision(for: route, matchIndex: matchIndex, subject: subject, defaultPort: port, routes: routes, dependsOnRequest: false)
        }
        return nil
    }

    private func routedGatewayTCP(facts: ConnectionFacts, routes: RouteTable) -> Decision? {
        let port = facts.port
        guard routes.servers.contains(where: { $0.port == port && $0.protocol == "TCP" }) else { return nil }
        let subject = Subject(traffic: .tcp, port: port, requestedHost: nil, destination: facts.destination)
        for route in routes.tcpRoutes {
            if let position = route.l4Matches.firstIndex(where: { $0.port == nil || $0.port == port }) {
                return decision(for: route, matchIndex: route.matchIndices[position], subject: subject, defaultPort: port, routes: routes, dependsOnRequest: false)
            } else if route.l4Matches.isEmpty {
                return decision(for: route, matchIndex: nil, subject: subject, defaultPort: port, routes: routes, dependsOnRequest: false)
            }
        }
        return noRoute(subject, why: "no tcp route bound to the Gateway's TCP server on port \(port)")
    }

    // MARK: Destinations

    private func decision(
        for route: RouteTable.Route, matchIndex: Int?, subject: Subject, defaultPort: Int, routes: RouteTable, dependsOnRequest: Bool,
        previous: Decision? = nil
    ) -> Decision {
        let chosen = pick(route.destinations)
        let key = route.kind == .http ? RouteKey(virtualService: route.virtualService, route: route.index, match: matchIndex, destination: chosen) : nil
        if let key, let previous, previous.routeKey == key { return previous }
        var decision = decision(for: route, chosen: chosen, matchIndex: matchIndex, subject: subject, defaultPort: defaultPort,
                                routes: routes, dependsOnRequest: dependsOnRequest)
        decision.routeKey = key
        return decision
    }

    private func decision(
        for route: RouteTable.Route, chosen: Int?, matchIndex: Int?, subject: Subject, defaultPort: Int, routes: RouteTable, dependsOnRequest: Bool
    ) -> Decision {
        let destination = chosen.map { route.destinations[$0] }
        var selectionBase = RouteSelection(
            virtualService: route.virtualService, source: route.source, kind: route.kind, index: route.index, matchIndex: matchIndex,
            destination: destination ?? RouteDestination(host: ""), behaviour: route.behaviour)
        if route.kind == .http, let matchIndex, let position = route.matchIndices.firstIndex(of: matchIndex), position < route.httpMatches.count {
            selectionBase.matchedURI = route.httpMatches[position].uri
        }
        let routeName = route.name
        let (service, source, kind, index) = (route.virtualService, route.source, route.kind, route.index)
        let where_: @Sendable () -> String = {
            "\(service) (\(source)) \(RouteSelection.position(kind: kind, index: index, matchIndex: matchIndex))"
        }
        guard let destination else {
            // A redirect route has no destination: answered locally by the data path.
            var decision = Decision(
                action: .deny, cluster: "", routeName: routeName, match: nil,
                denial: .httpStatus(route.behaviour.redirect?.code ?? 404),
                explain: { "\(where_()) answers locally (redirect)" })
            decision.route = selectionBase
            decision.dependsOnlyOnAuthority = !dependsOnRequest
            return decision
        }
        let asked = subject.requestedHost ?? subject.original.description
        let prepared = chosen.flatMap { $0 < route.prepared.count ? route.prepared[$0] : nil }
        var decision = forward(to: destination, prepared: prepared, subject: subject, defaultPort: defaultPort, routes: routes,
                               routeName: routeName, selection: selectionBase, context: { "\(where_()) routes \(asked)" })
        decision.dependsOnlyOnAuthority = !dependsOnRequest
        return decision
    }

    /// The index of a destination by weight (Envoy's weighted clusters); the only one when
    /// unweighted; nil when there is none (a redirect).
    private func pick(_ destinations: [RouteDestination]) -> Int? {
        guard destinations.count > 1 else { return destinations.isEmpty ? nil : 0 }
        let total = destinations.reduce(0) { $0 + $1.weight }
        guard total > 0 else { return 0 }
        var sample = weightPicker(total)
        for (index, destination) in destinations.enumerated() {
            if sample < destination.weight { return index }
            sample -= destination.weight
        }
        return destinations.count - 1
    }

    /// The forward to `destination`: a registered host by its resolution (and DestinationRule
    /// subset labels), a Kubernetes Service (or a host ASM registers) resolved by DNS; anything
    /// else has no cluster (Envoy: 503 NC; the sidecar answers as for a refusal).
    func forward(
        to destination: RouteDestination, prepared: RouteTable.PreparedDestination? = nil, subject: Subject, defaultPort: Int,
        routes: RouteTable, routeName: String, selection: RouteSelection, context: @escaping @Sendable () -> String
    ) -> Decision {
        let rule = prepared.map(\.rule) ?? routes.destinationRule(for: destination.host)
        let subsetLabels = prepared?.subsetLabels
            ?? destination.subset.flatMap { name in rule?.subsetDetails.first { $0.name == name } }?.labels ?? [:]
        let registeredMatch = registry.lookup(host: destination.host, port: destination.port ?? defaultPort)
            ?? (destination.port == nil ? onlyPortMatch(host: destination.host) : nil)
        let port = destination.port ?? registeredMatch?.port.number ?? defaultPort
        var selection = selection
        if let prepared, prepared.cluster != nil {
            selection.trafficPolicy = prepared.trafficPolicy
        } else {
            selection.trafficPolicy = rule.map { $0.policy(subset: destination.subset, port: port) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        selection.destinationRule = selection.trafficPolicy == nil ? nil : rule?.id
        let cluster = prepared?.cluster ?? RouteTable.clusterName(host: destination.host, subset: destination.subset, port: port)
        let target: UpstreamTarget
        let how: @Sendable () -> String
        if let match = registeredMatch {
            var destinationSubject = subject
            destinationSubject.requestedHost = destination.host
            destinationSubject.port = port
            switch directTarget(destinationSubject, match: match, concreteHost: destination.host, subsetLabels: subsetLabels) {
            case .success(let direct):
                target = direct.target
                let inner = direct.how
                how = { "\(Policy.describe(match)); \(inner())" }
            case .failure(let refusal):
                var decision = Decision(
                    action: .deny, cluster: cluster, routeName: routeName, match: match, denial: denial(for: subject),
                    explain: { "\(context()) to \(cluster); \(Policy.describe(match)); \(refusal.reason)" })
                decision.route = selection
                return decision
            }
        } else if RoutingAnalysis.isKubernetesService(destination.host) || routes.impliedHosts.contains(destination.host) {
            target = .resolve(host: destination.host, port: port)
            let service = RoutingAnalysis.isKubernetesService(destination.host) ? "a Kubernetes Service" : "a host an ASMEgressTrafficPolicy registers"
            how = { "\(destination.host) is \(service), resolved by DNS; the request keeps its Host" }
        } else {
            var decision = Decision(
                action: .deny, cluster: cluster, routeName: routeName, match: nil,
                denial: subject.traffic == .http ? .httpStatus(503) : .close,
                explain: { "\(context()) to \(cluster), but \(destination.host) is neither registered nor a Kubernetes Service: no cluster (Envoy's 503 NC)" })
            decision.route = selection
            return decision
        }
        let tls = UpstreamTLS.resolve(selection.trafficPolicy?.tls, host: destination.host,
                                      entrySubjectAltNames: registeredMatch?.entry.subjectAltNames ?? [])
        var decision = Decision(action: .forward(target), cluster: cluster, routeName: routeName, match: registeredMatch,
                                explain: { "\(context()) to \(cluster): \(how())" + (tls.map { "; upstream TLS \($0)" } ?? "") })
        decision.route = selection
        decision.upstreamTLS = tls
        return decision
    }

    /// Istio's rule for a destination without a port: the service's port, when it has one.
    private func onlyPortMatch(host: String) -> RegistryMatch? {
        guard let entry = registry.entries.first(where: { $0.hosts.contains { HostPattern.matches($0, host) } }),
              entry.ports.count == 1, let only = entry.ports.first
        else { return nil }
        return registry.lookup(host: host, port: only.number)
    }

    // MARK: Refusals

    /// No route (Envoy's `NR`): 404 for HTTP, a close for TLS and TCP.
    private func noRoute(_ subject: Subject, why: String) -> Decision {
        let denial: Decision.Denial = subject.traffic == .http ? .httpStatus(404) : .close
        return Decision(action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil, denial: denial,
                        explain: { "\(why): no route (NR), \(denial)" })
    }

    /// A host an ASMEgressTrafficPolicy covers that none of its rules lets this workload reach.
    private func blockedDecision(host: String, subject: Subject, routes: RouteTable) -> Decision? {
        guard let blocked = routes.blockedHosts.first(where: { HostPattern.matches($0.host, host) }) else { return nil }
        let denial = denial(for: subject)
        return Decision(
            action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil, denial: denial,
            explain: { "\(blocked.policy) (\(blocked.host)) names no egressRules.from that selects this workload: ASM sends it to the BlackHoleCluster" })
    }

    /// Unregistered traffic under ALLOW_ANY with a Sidecar `egressProxy`: to the proxy
    /// instead of the original destination (Istio's catch-all route to that cluster).
    func egressProxyDecision(_ subject: Subject, proxy: RouteDestination, reason: @escaping @Sendable () -> String) -> Decision {
        guard let routes else { return Decision(action: .deny, cluster: Decision.blackHoleCluster, routeName: Decision.blockAllRoute, match: nil, reason: reason()) }
        let sidecar = routes.sidecar
        let selection = RouteSelection(
            virtualService: nil, source: sidecar?.source, kind: subject.traffic == .http ? .http : (subject.traffic == .tls ? .tls : .tcp),
            index: 0, matchIndex: nil, destination: proxy)
        let name = sidecar.map { "\($0.id)" } ?? "Sidecar"
        return forward(to: proxy, subject: subject, defaultPort: subject.port, routes: routes, routeName: Decision.allowAnyRoute,
                       selection: selection, context: { reason() + "; ALLOW_ANY with \(name)'s egressProxy sends it" })
    }
}
