import SluiceCore

extension ConfigDump {
    /// The routes this proxy compiled from the routing objects (`RouteTable`), and what the
    /// `egressGateway:` shorthand expands to, in Istio's terms.
    struct RoutesDump: Encodable {
        let workload: Workload
        let http: [Route]
        let tls: [Route]
        let tcp: [Route]
        let gatewayServers: [Server]
        let sidecar: String?
        let egressProxy: String?
        let blockedHosts: [String]
        let egressGatewayShorthand: [String]

        init(snapshot: SluiceSnapshot, role: ProxyRole) {
            let table = RouteTable.compile(snapshot.routing, role: role, identity: snapshot.identity)
            self.workload = Workload(
                namespace: snapshot.identity.namespace, labels: snapshot.identity.labels, serviceAccount: snapshot.identity.serviceAccount)
            self.http = table.httpRoutes.map { Route($0, table: table) }
            self.tls = table.tlsRoutes.map { Route($0, table: table) }
            self.tcp = table.tcpRoutes.map { Route($0, table: table) }
            self.gatewayServers = table.servers.map(Server.init)
            self.sidecar = table.sidecar.map { "\($0.id) (\($0.source))" }
            self.egressProxy = table.sidecar?.egressProxy.map { proxy in
                RouteTable.clusterName(host: proxy.host, subset: proxy.subset, port: proxy.port ?? 0)
            }
            self.blockedHosts = table.blockedHosts.map { "\($0.host) (\($0.policy))" }
            self.egressGatewayShorthand = role == .sidecar ? snapshot.config.egressGateway.map(ShorthandRoutes.describe) ?? [] : []
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(workload, forKey: .workload)
            try container.encode(http, forKey: .http)
            try container.encode(tls, forKey: .tls)
            try container.encode(tcp, forKey: .tcp)
            try container.encode(gatewayServers, forKey: .gatewayServers)
            try container.encode(sidecar, forKey: .sidecar)
            try container.encode(egressProxy, forKey: .egressProxy)
            try container.encode(blockedHosts, forKey: .blockedHosts)
            try container.encode(egressGatewayShorthand, forKey: .egressGatewayShorthand)
        }

        enum CodingKeys: String, CodingKey {
            case workload, http, tls, tcp, gatewayServers, sidecar, egressProxy, blockedHosts, egressGatewayShorthand
        }
    }

    struct Workload: Encodable {
        let namespace: String
        let labels: [String: String]
        let serviceAccount: String?
    }

    struct Route: Encodable {
        let virtualService: String
        let source: String
        let route: String
        let name: String
        let hosts: [String]
        let matches: [String]
        let destinations: [Destination]

        init(_ route: RouteTable.Route, table: RouteTable) {
            self.virtualService = "\(route.virtualService.namespace)/\(route.virtualService.name)"
            self.source = route.source.description
            self.route = "\(route.kind.rawValue)[\(route.index)]"
            self.name = route.name
            self.hosts = route.hosts
            self.matches = route.httpMatches.map(Route.describe) + route.l4Matches.map(Route.describe)
            self.destinations = route.destinations.map { Destination($0, behaviour: route.behaviour, table: table) }
        }

        static func describe(_ match: HTTPMatchRequest) -> String {
            var parts: [String] = []
            if let port = match.port { parts.append("port \(port)") }
            if let uri = match.uri { parts.append("uri \(uri)") }
            if let method = match.method { parts.append("method \(method)") }
            if let authority = match.authority { parts.append("authority \(authority)") }
            for (name, rule) in match.headers.sorted(by: { $0.key < $1.key }) { parts.append("header \(name) \(rule)") }
            return parts.isEmpty ? "any" : parts.joined(separator: ", ")
        }

        static func describe(_ match: L4Match) -> String {
            var parts: [String] = []
            if let port = match.port { parts.append("port \(port)") }
            if !match.sniHosts.isEmpty { parts.append("sniHosts \(match.sniHosts.joined(separator: " "))") }
            if !match.destinationSubnets.isEmpty { parts.append("destinationSubnets \(match.destinationSubnets.map(\.description).joined(separator: " "))") }
            return parts.isEmpty ? "any" : parts.joined(separator: ", ")
        }
    }

    struct Destination: Encodable {
        let cluster: String
        let weight: Int
        let timeout: String?
        let retries: String?
        let destinationRule: String?

        init(_ destination: RouteDestination, behaviour: HTTPRouteBehaviour, table: RouteTable) {
            self.cluster = RouteTable.clusterName(host: destination.host, subset: destination.subset, port: destination.port ?? 0)
            self.weight = destination.weight
            self.timeout = behaviour.timeout.map(RoutingDurations.format)
            self.retries = behaviour.retries.map { "\($0.attempts) on \($0.retryOn.joined(separator: ","))" }
            self.destinationRule = table.destinationRule(for: destination.host).map { "\($0.id.namespace)/\($0.id.name)" }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(cluster, forKey: .cluster)
            try container.encode(weight, forKey: .weight)
            try container.encode(timeout, forKey: .timeout)
            try container.encode(retries, forKey: .retries)
            try container.encode(destinationRule, forKey: .destinationRule)
        }

        enum CodingKeys: String, CodingKey {
            case cluster, weight, timeout, retries, destinationRule
        }
    }

    struct Server: Encodable {
        let gateway: String
        let port: Int
        let `protocol`: String
        let hosts: [String]
        let tlsMode: String?

        init(_ server: RouteTable.Server) {
            self.gateway = "\(server.gateway.namespace)/\(server.gateway.name)"
            self.port = server.port
            self.protocol = server.protocol
            self.hosts = server.hosts.map { "\($0.namespace)/\($0.host)" }
            self.tlsMode = server.tlsMode
        }
    }
}
