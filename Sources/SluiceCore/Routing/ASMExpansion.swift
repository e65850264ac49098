/// ASMEgressTrafficPolicy → the Gateway and VirtualServices ASM generates for it (ASM's
/// "ASMEgressTrafficPolicy CRD description"): the egress gateway listens on each `to`'s
/// `byEgressGateway.port` for its hosts; the sidecars of the `from` workloads send that traffic
/// to the gateway's Service on that port; the gateway sends it on to the host's `port`.
/// Workloads no rule names are blocked for those hosts.
public enum ASMExpansion {
    /// The subset of a host's generated DestinationRule that originates TLS for `httpsUpgrade`.
    public static let httpsUpgradeSubset = "https-upgrade"

    /// What a set of policies expands to for one workload.
    public struct Result: Sendable {
        public var gateways: [IstioGateway] = []
        public var virtualServices: [VirtualService] = []
        /// Hosts covered by a policy but not for this workload.
        public var blocked: [(host: String, policy: RoutingObjectID)] = []
        /// Every host the policies cover (ASM registers them, resolution DNS).
        public var impliedHosts: Set<String> = []
        /// `httpsUpgrade`: a DestinationRule per host with `tls.mode: SIMPLE` on the HTTPS
        /// port, what ASM writes so the gateway originates TLS.
        public var destinationRules: [DestinationRule] = []
    }

    /// Expands `policies` as seen by `identity` (sidecar: its `from` decides which hosts are
    /// routed and which blocked; gateway: every rule).
    public static func expand(_ policies: [ASMEgressTrafficPolicy], for identity: WorkloadIdentity) -> Result {
        var result = Result()
        for policy in policies {
            let gatewayName = policy.gatewayShortName
            let gatewayID = RoutingObjectID(kind: "Gateway", namespace: policy.id.namespace, name: gatewayName)
            var servers: [IstioGateway.Server] = []
            var allowedHosts: Set<String> = []
            var coveredHosts: [String] = []
            for (ruleIndex, rule) in policy.rules.enumerated() {
                let matchesWorkload = rule.from.contains { from in
                    from.namespace == identity.namespace && identity.isSelected(by: from.workloadSelector)
                }
                for to in rule.to {
                    coveredHosts += to.hosts
                    if matchesWorkload { allowedHosts.formUnion(to.hosts) }
                    result.impliedHosts.formUnion(to.hosts)
                    let passthrough = to.protocol == "HTTPS" || to.protocol == "TLS"
                    servers.append(.init(
                        port: to.gatewayPort, portName: to.portName, protocol: passthrough ? "TLS" : to.protocol,
                        hosts: to.hosts, tlsMode: passthrough ? "PASSTHROUGH" : nil))
                    for host in to.hosts {
                        let serviceID = RoutingObjectID(kind: "VirtualService", namespace: policy.id.namespace, name: "\(policy.id.name)-\(ruleIndex)-\(to.name)-\(host)")
                        let toGateway = RouteDestination(host: policy.gatewayService, port: to.gatewayPort, weight: 100)
                        // httpsUpgrade: the gateway sends the plain HTTP on to the host's HTTPS port,
                        // in a subset whose policy originates TLS (so the host's own TLS on that
                        // port, passed through by another `to`, is not wrapped twice).
                        let upgrade = to.httpsUpgrade && to.protocol == "HTTP"
                        let toHost = { (host: String) in
                            upgrade
                                ? RouteDestination(host: host, subset: ASMExpansion.httpsUpgradeSubset, port: to.httpsUpgradePort, weight: 100)
                                : RouteDestination(host: host, port: to.port, weight: 100)
                        }
                        if upgrade {
                            var upgradePolicy = TrafficPolicy()
                            var level = TrafficPolicy()
                            level.tls = ClientTLSSettings(mode: "SIMPLE")
                            upgradePolicy.portLevel[to.httpsUpgradePort] = level
                            var rule = DestinationRule(
                                id: RoutingObjectID(kind: "DestinationRule", namespace: policy.id.namespace, name: "\(policy.id.name)-\(ruleIndex)-\(to.name)-\(host)"),
                                host: host, subsets: [ASMExpansion.httpsUpgradeSubset], tlsMode: nil, exportTo: [], source: policy.source)
                            rule.subsetDetails = [DestinationSubset(name: ASMExpansion.httpsUpgradeSubset, trafficPolicy: upgradePolicy)]
                            result.destinationRules.append(rule)
                        }
                        var routes: [VirtualServiceRoute] = []
                        // The sidecar's route exists only for the `from` workloads (ASM writes one
                        // per rule); the others meet the BlackHoleCluster.
                        let meshMatches = rule.from.map { from in
                            HTTPMatchRequest(port: to.port, sourceLabels: from.workloadSelector, gateways: ["mesh"], sourceNamespace: from.namespace)
                        }
                        let meshL4 = rule.from.map { from in
                            L4Match(port: to.port, sniHosts: passthrough ? [host] : [], gateways: ["mesh"], sourceLabels: from.workloadSelector, sourceNamespace: from.namespace)
                        }
                        let gatewayRef = "\(policy.id.namespace)/\(gatewayName)"
                        switch to.protocol {
                        case "HTTP":
                            var mesh = route(.http, name: to.name, destinations: [toGateway])
                            mesh.httpMatches = meshMatches
                            var atGateway = route(.http, name: to.name, destinations: [toHost(host)])
                            atGateway.httpMatches = [HTTPMatchRequest(port: to.gatewayPort, gateways: [gatewayRef])]
                            routes = [mesh, atGateway]
                        default:
                            let kind: VirtualServiceRoute.Kind = passthrough ? .tls : .tcp
                            var mesh = route(kind, name: to.name, destinations: [toGateway])
                            mesh.l4Matches = meshL4
                            var atGateway = route(kind, name: to.name, destinations: [toHost(host)])
                            atGateway.l4Matches = [L4Match(port: to.gatewayPort, sniHosts: passthrough ? [host] : [], gateways: [gatewayRef])]
                            routes = [mesh, atGateway]
                        }
                        result.virtualServices.append(VirtualService(
                            id: serviceID, hosts: [host], gateways: [gatewayRef, "mesh"], exportTo: [], routes: routes, source: policy.source))
                    }
                }
            }
            result.gateways.append(IstioGateway(id: gatewayID, selector: ["istio": gatewayName], servers: servers, source: policy.source))
            var seen: Set<String> = []
            for host in coveredHosts where !allowedHosts.contains(host) && seen.insert(host).inserted {
                result.blocked.append((host, policy.id))
            }
        }
        return result
    }

    private static func route(_ kind: VirtualServiceRoute.Kind, name: String, destinations: [RouteDestination]) -> VirtualServiceRoute {
        VirtualServiceRoute(kind: kind, name: name, matchPorts: [], matchGateways: [], sniHosts: [], destinations: destinations, unappliedFields: [])
    }
}
