/// The `egressGateway:` block of sluice.yaml written as the VirtualService it stands for, so
/// that `sluice explain` and `/config_dump` can show what it expands to. The decision itself
/// keeps following the block (`Policy.registered`); this is the same thing in Istio's terms:
/// registered hosts matching `hosts`, at the sidecar (`mesh`), go to the gateway's HTTP port
/// (HTTP, Host kept) or TLS port (by SNI), or — with `protocol: connect` — through a CONNECT
/// tunnel on its CONNECT port.
public enum ShorthandRoutes {
    /// The VirtualService's id: namespace `sluice.yaml`, name `egressGateway`.
    public static let id = RoutingObjectID(kind: "VirtualService", namespace: "sluice.yaml", name: "egressGateway")

    /// The expansion of `gateway`.
    public static func expand(_ gateway: EgressGatewayConfig) -> VirtualService {
        let address = gateway.addresses.first ?? "(no address)"
        var routes: [VirtualServiceRoute] = []
        func route(_ kind: VirtualServiceRoute.Kind, port: Int) -> VirtualServiceRoute {
            VirtualServiceRoute(
                kind: kind, name: "egressGateway-\(kind.rawValue)", matchPorts: [], matchGateways: ["mesh"], sniHosts: kind == .tls ? gateway.hosts : [],
                destinations: [RouteDestination(host: address, port: port, weight: 100)], unappliedFields: [])
        }
        switch gateway.protocol {
        case .istio:
            var http = route(.http, port: gateway.httpPort)
            http.httpMatches = [HTTPMatchRequest(gateways: ["mesh"])]
            var tls = route(.tls, port: gateway.tlsPort)
            tls.l4Matches = [L4Match(sniHosts: gateway.hosts, gateways: ["mesh"])]
            routes = [http, tls]
        case .connect:
            var tcp = route(.tcp, port: gateway.connectPort)
            tcp.l4Matches = [L4Match(gateways: ["mesh"])]
            routes = [tcp]
        }
        return VirtualService(
            id: id, hosts: gateway.hosts, gateways: ["mesh"], exportTo: [], routes: routes,
            source: SourceLocation(path: "sluice.yaml egressGateway", line: 0))
    }

    /// One line per route: `http[0] hosts [*] -> 192.0.2.20:80 (Host kept)`.
    public static func describe(_ gateway: EgressGatewayConfig) -> [String] {
        let service = expand(gateway)
        var lines: [String] = []
        var counters: [VirtualServiceRoute.Kind: Int] = [:]
        for route in service.routes {
            let index = counters[route.kind, default: 0]
            counters[route.kind] = index + 1
            let targets = gateway.addresses.map { HostPort(host: $0, port: route.destinations.first?.port ?? 0).description }.joined(separator: ", ")
            let how: String
            switch route.kind {
            case .http: how = "HTTP with its Host kept"
            case .tls: how = "TLS routed by SNI"
            case .tcp: how = "a CONNECT tunnel to the original host:port"
            }
            lines.append("\(service.id) \(route.kind.rawValue)[\(index)]: registered hosts \(gateway.hosts) at the sidecar (mesh) -> \(targets) as \(how)")
        }
        return lines
    }
}
