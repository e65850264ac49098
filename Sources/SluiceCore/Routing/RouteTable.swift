/// The routes one proxy applies, compiled once per snapshot for its role and workload:
/// which VirtualService routes bind to it (`mesh` at a sidecar, the selected Gateways at a
/// gateway), with what `sourceLabels`, `sourceNamespace` and `gateways` say already settled,
/// so that deciding only looks at the request. Immutable: a reload builds a new one beside
/// the new registry, and the swap stays atomic.
public struct RouteTable: Sendable {
    /// One route as compiled: where it came from, what it matches on the traffic, where it goes.
    public struct Route: Sendable, Equatable {
        /// The VirtualService (an ASMEgressTrafficPolicy's, or `egressGateway:` shorthand's).
        public var virtualService: RoutingObjectID
        /// Where it was defined.
        public var source: SourceLocation
        /// http, tls or tcp.
        public var kind: VirtualServiceRoute.Kind
        /// Index in the VirtualService's `http`, `tls` or `tcp` list.
        public var index: Int
        /// The route's `name` (Envoy's `route_name`; empty when unnamed, as Istio leaves it).
        public var name: String
        /// The VirtualService's hosts, qualified.
        public var hosts: [String]
        /// http matches that apply to this proxy (empty: every request). Each keeps only what
        /// depends on the traffic.
        public var httpMatches: [HTTPMatchRequest]
        /// tls / tcp matches that apply to this proxy (empty: every connection).
        public var l4Matches: [L4Match]
        /// The destinations, with weights.
        public var destinations: [RouteDestination]
        /// The http behaviours.
        public var behaviour: HTTPRouteBehaviour
        /// Original match indices of `httpMatches` / `l4Matches`, for `explain`.
        public var matchIndices: [Int]
        /// Per destination, what compiling could settle: cluster name and DestinationRule policy.
        var prepared: [PreparedDestination] = []

        /// True when choosing it (or its destination) looks beyond the authority and port.
        public var dependsOnRequest: Bool {
            httpMatches.contains(where: \.dependsOnRequest) || destinations.count > 1 || behaviour.fault != nil
        }
    }

    /// What a destination needs at decision time that compiling can settle once.
    struct PreparedDestination: Sendable, Equatable {
        /// The DestinationRule for its host, if any.
        var rule: DestinationRule?
        /// The subset's endpoint labels.
        var subsetLabels: [String: String]
        /// With an explicit port: its cluster name and merged traffic policy.
        var cluster: String?
        var trafficPolicy: TrafficPolicy?
    }

    /// The sidecar's http routes by VirtualService host, so a decision does not scan them all:
    /// an exact host first, then wildcards from the most specific (first loaded among equals).
    struct HTTPIndex: Sendable {
        /// Hosts and patterns point into `services` by position: one dictionary lookup by host
        /// per request, no second one by VirtualService id.
        var exact: [String: Int] = [:]
        var wildcards: [(pattern: String, service: Int)] = []
        var services: [Service] = []
        /// Each VirtualService's position in `services`.
        var positions: [RoutingObjectID: Int] = [:]

        /// One VirtualService's routes, in order, and their matches compiled into one index.
        struct Service: Sendable {
            var service: RoutingObjectID
            var routes: [Route]
            var matcher = HTTPRouteMatcher([])
        }

        init(_ routes: [Route]) {
            var seenWildcards: Set<String> = []
            for route in routes {
                let position: Int
                if let known = positions[route.virtualService] {
                    position = known
                    services[known].routes.append(route)
                } else {
                    position = services.count
                    positions[route.virtualService] = position
                    services.append(Service(service: route.virtualService, routes: [route]))
                }
                for host in route.hosts {
                    if host.hasPrefix("*") {
                        if seenWildcards.insert("\(host)|\(route.virtualService)").inserted { wildcards.append((host, position)) }
                    } else if exact[host] == nil {
                        exact[host] = position
                    }
                }
            }
            // Stable: among equally specific patterns the first loaded stays first.
            wildcards = wildcards.enumerated().sorted { lhs, rhs in
                let (left, right) = (HostPattern.specificity(lhs.element.pattern), HostPattern.specificity(rhs.element.pattern))
                return left != right ? left > right : lhs.offset < rhs.offset
            }.map(\.element)
            for position in services.indices {
                services[position].matcher = HTTPRouteMatcher(services[position].routes.map { route in
                    (route.httpMatches, route.matchIndices, route.index, route.dependsOnRequest, route.destinations.count <= 1)
                })
            }
        }

        /// The VirtualService for `host` and its routes, in order.
        func lookup(_ host: String) -> Service? {
            guard let position = exact[host] ?? wildcards.first(where: { HostPattern.matches($0.pattern, host) })?.service else { return nil }
            return services[position]
        }
    }

    /// A Gateway server the gateway listens with.
    public struct Server: Sendable, Equatable {
        /// The Gateway.
        public var gateway: RoutingObjectID
        /// `port.number`.
        public var port: Int
        /// `port.protocol`.
        public var `protocol`: String
        /// `hosts`: namespace filter (`*`, `.`, a name) and host pattern.
        public var hosts: [(namespace: String, host: String)] {
            hostPairs.map { ($0.namespace, $0.host) }
        }
        var hostPairs: [HostPair]
        /// `tls.mode`.
        public var tlsMode: String?
        /// SIMPLE / MUTUAL: the certificate.
        public var tlsFiles: ServerTLSFiles?

        struct HostPair: Sendable, Equatable {
            var namespace: String
            var host: String
        }

        /// Whether the server takes `host` routed by a VirtualService in `namespace`.
        func admits(host: String, virtualServiceNamespace: String) -> Bool {
            hostPairs.contains { pair in
                let nsOK = pair.namespace == "*" || (pair.namespace == "." ? virtualServiceNamespace == gateway.namespace : pair.namespace == virtualServiceNamespace)
                return nsOK && HostPattern.matches(pair.host, host)
            }
        }

        /// Routes HTTP by Host: plain HTTP, or HTTPS whose ISTIO_MUTUAL the gateway terminates.
        var isHTTP: Bool { ["HTTP", "HTTP2", "GRPC"].contains(`protocol`) || (`protocol` == "HTTPS" && terminatesTLS) }
        /// Routes TLS by SNI: PASSTHROUGH, or the app's TLS inside terminated ISTIO_MUTUAL (its inner SNI).
        var isTLSPassthrough: Bool {
            ((`protocol` == "TLS" || `protocol` == "HTTPS") && tlsMode == "PASSTHROUGH") || (`protocol` == "TLS" && terminatesIstioMutual)
        }
    }

    /// The role compiled for.
    public let role: ProxyRole
    /// The workload compiled for.
    public let identity: WorkloadIdentity
    /// http routes, by VirtualService, in load order (sidecar: bound to `mesh`; gateway: to a
    /// selected Gateway).
    public let httpRoutes: [Route]
    /// tls routes.
    public let tlsRoutes: [Route]
    /// tcp routes.
    public let tcpRoutes: [Route]
    /// The selected Gateways' servers (gateway role).
    public let servers: [Server]
    /// DestinationRules visible to the workload.
    public let destinationRules: [DestinationRule]
    /// The Sidecar resource that applies (sidecar role).
    public let sidecar: SidecarResource?
    /// Hosts an ASMEgressTrafficPolicy covers but none of its rules lets this workload reach,
    /// with the policy that covers them: ASM sends them to the BlackHoleCluster.
    public let blockedHosts: [(host: String, policy: RoutingObjectID)]
    /// Hosts ASM registers (it generates their ServiceEntries): resolvable by DNS.
    public let impliedHosts: Set<String>
    /// What the compilation noticed (objects left out and why), for `check` and `explain`.
    public let notes: [String]
    /// `httpRoutes` indexed by host (sidecar).
    var httpIndex = HTTPIndex([])

    /// True when there is nothing to apply: `Policy` then decides exactly as without routing.
    public var isEmpty: Bool {
        httpRoutes.isEmpty && tlsRoutes.isEmpty && tcpRoutes.isEmpty && servers.isEmpty && blockedHosts.isEmpty
            && sidecar?.egressProxy == nil && !destinationRules.contains { $0.appliesTLS }
    }

    /// The DestinationRule for `host` (exact first, then the most specific wildcard).
    public func destinationRule(for host: String) -> DestinationRule? {
        DestinationRule.best(for: host, in: destinationRules)
    }

    /// Envoy's cluster name for a destination: `outbound|port|subset|host`.
    public static func clusterName(host: String, subset: String?, port: Int) -> String {
        "outbound|\(port)|\(subset ?? "")|\(host)"
    }
}

extension RouteTable {
    /// Compiles `routing` for a proxy of `role` working for `identity`.
    public static func compile(_ routing: RoutingObjects, role: ProxyRole, identity: WorkloadIdentity) -> RouteTable {
        var objects = routing
        let asm = ASMExpansion.expand(routing.egressTrafficPolicies, for: identity)
        objects.gateways += asm.gateways
        objects.virtualServices += asm.virtualServices
        objects.destinationRules += asm.destinationRules
        var notes: [String] = []
        let sidecar = role == .sidecar ? SidecarScope.select(objects.sidecars, for: identity) : nil

        func visible(_ exportTo: [String], namespace: String) -> Bool {
            exportTo.isEmpty || exportTo.contains("*") || exportTo.contains(identity.namespace)
                || (exportTo.contains(".") && namespace == identity.namespace)
        }

        var servers: [Server] = []
        var boundGateways: Set<String> = []
        if role == .gateway {
            for gateway in objects.gateways where identity.isSelected(by: gateway.selector) {
                boundGateways.insert("\(gateway.id.namespace)/\(gateway.id.name)")
                for server in gateway.servers {
                    let pairs = server.hosts.map { text -> Server.HostPair in
                        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
                        return parts.count == 2 ? .init(namespace: parts[0], host: parts[1].lowercased()) : .init(namespace: "*", host: text.lowercased())
                    }
                    servers.append(Server(gateway: gateway.id, port: server.port, protocol: server.protocol, hostPairs: pairs, tlsMode: server.tlsMode,
                                          tlsFiles: server.tlsFiles))
                }
            }
        }

        /// Whether a binding list (`mesh`, `name`, `ns/name`) binds to this proxy.
        func binds(_ gateways: [String], namespace: String) -> Bool {
            switch role {
            case .sidecar: return gateways.contains("mesh")
            case .gateway:
                return gateways.contains { name in
                    name != "mesh" && boundGateways.contains(name.contains("/") ? name : "\(namespace)/\(name)")
                }
            }
        }

        func sourceSelects(labels: [String: String], namespace: String?) -> Bool {
            identity.isSelected(by: labels) && (namespace.map { $0 == identity.namespace } ?? true)
        }

        var http: [Route] = []
        var tls: [Route] = []
        var tcp: [Route] = []
        for service in objects.virtualServices {
            guard visible(service.exportTo, namespace: service.id.namespace) else {
                notes.append("\(service.id) is not exported to namespace \(identity.namespace)")
                continue
            }
            let hosts = service.hosts.map { HostPattern.qualified($0, namespace: service.id.namespace) }
            if let sidecar, !hosts.contains(where: { SidecarScope.imports(sidecar, host: $0, namespace: service.id.namespace) }) {
                notes.append("\(service.id) is not imported by \(sidecar.id)'s egress hosts")
                continue
            }
            var counters: [VirtualServiceRoute.Kind: Int] = [:]
            for route in service.routes {
                let index = counters[route.kind, default: 0]
                counters[route.kind] = index + 1
                var compiled = Route(
                    virtualService: service.id, source: service.source, kind: route.kind, index: index, name: route.name ?? "", hosts: hosts,
                    httpMatches: [], l4Matches: [], destinations: route.destinations, behaviour: route.behaviour, matchIndices: [])
                /// The indices of the matches that apply to this proxy; nil when none does
                /// (no match items: the VirtualService's own binding decides).
                func applying(_ bindings: [(gateways: [String], labels: [String: String], namespace: String?)]) -> [Int]? {
                    guard !bindings.isEmpty else { return binds(service.gateways, namespace: service.id.namespace) ? [] : nil }
                    let indices = bindings.indices.filter { index in
                        let binding = bindings[index]
                        return binds(binding.gateways.isEmpty ? service.gateways : binding.gateways, namespace: service.id.namespace)
                            && sourceSelects(labels: binding.labels, namespace: binding.namespace)
                    }
                    return indices.isEmpty ? nil : indices
                }
                switch route.kind {
                case .http:
                    guard let indices = applying(route.httpMatches.map { ($0.gateways, $0.sourceLabels, $0.sourceNamespace) }) else { continue }
                    compiled.httpMatches = indices.map { route.httpMatches[$0] }
                    compiled.matchIndices = indices
                    http.append(compiled)
                case .tls, .tcp:
                    guard let indices = applying(route.l4Matches.map { ($0.gateways, $0.sourceLabels, $0.sourceNamespace) }) else { continue }
                    compiled.l4Matches = indices.map { route.l4Matches[$0] }
                    compiled.matchIndices = indices
                    if route.kind == .tls { tls.append(compiled) } else { tcp.append(compiled) }
                }
            }
        }
        let rules = objects.destinationRules.filter { rule in
            visible(rule.exportTo, namespace: rule.id.namespace)
                && (rule.workloadSelector.map { identity.isSelected(by: $0) && rule.id.namespace == identity.namespace } ?? true)
        }.map { rule -> DestinationRule in
            var qualified = rule
            qualified.host = HostPattern.qualified(rule.host, namespace: rule.id.namespace)
            return qualified
        }
        var table = RouteTable(
            role: role, identity: identity, httpRoutes: [], tlsRoutes: [], tcpRoutes: [], servers: servers,
            destinationRules: rules, sidecar: sidecar, blockedHosts: role == .sidecar ? asm.blocked : [],
            impliedHosts: asm.impliedHosts, notes: notes)
        func prepare(_ routes: [Route]) -> [Route] {
            routes.map { route in
                var prepared = route
                prepared.prepared = route.destinations.map { destination in
                    let rule = table.destinationRule(for: destination.host)
                    let labels = destination.subset.flatMap { name in rule?.subsetDetails.first { $0.name == name } }?.labels ?? [:]
                    var result = PreparedDestination(rule: rule, subsetLabels: labels)
                    if let port = destination.port {
                        result.cluster = clusterName(host: destination.host, subset: destination.subset, port: port)
                        result.trafficPolicy = rule.map { $0.policy(subset: destination.subset, port: port) }.flatMap { $0.isEmpty ? nil : $0 }
                    }
                    return result
                }
                return prepared
            }
        }
        let preparedHTTP = prepare(http)
        table = RouteTable(
            role: role, identity: identity, httpRoutes: preparedHTTP, tlsRoutes: prepare(tls), tcpRoutes: prepare(tcp), servers: servers,
            destinationRules: rules, sidecar: sidecar, blockedHosts: table.blockedHosts, impliedHosts: asm.impliedHosts, notes: notes,
            httpIndex: HTTPIndex(preparedHTTP))
        return table
    }
}
