/// Istio's routing objects as users write them for egress (Gateway, VirtualService,
/// DestinationRule, Sidecar), loaded from the registry paths beside the ServiceEntries.
///
/// They are loaded, validated and cross-checked (`RoutingAnalysis`, as `istioctl analyze`
/// does), then compiled per workload into a `RouteTable` that `Policy` decides with.

/// A reference to a routing object: kind, namespace, name and where it was defined.
public struct RoutingObjectID: Sendable, Hashable, CustomStringConvertible {
    /// `Gateway`, `VirtualService`, `DestinationRule` or `Sidecar`.
    public var kind: String
    /// `metadata.namespace` (`default` when absent, as kubectl applies it).
    public var namespace: String
    /// `metadata.name`.
    public var name: String

    /// Creates an id.
    public init(kind: String, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `Kind namespace/name`.
    public var description: String { "\(kind) \(namespace)/\(name)" }
}

/// `networking.istio.io` Gateway: the listeners a gateway whose labels match `selector` opens.
public struct IstioGateway: Sendable, Equatable {
    /// One `spec.servers` item.
    public struct Server: Sendable, Equatable {
        /// `port.number`.
        public var port: Int
        /// `port.name`.
        public var portName: String
        /// `port.protocol`: HTTP, HTTPS, HTTP2, GRPC, TLS, TCP or MONGO.
        public var `protocol`: String
        /// `hosts`, with their optional `namespace/` prefix.
        public var hosts: [String]
        /// `tls.mode` (PASSTHROUGH, SIMPLE, MUTUAL, ISTIO_MUTUAL, AUTO_PASSTHROUGH), if any.
        public var tlsMode: String?
        /// SIMPLE / MUTUAL: the certificate files (`serverCertificate`, `privateKey`,
        /// `caCertificates`) or `credentialName`.
        public var tlsFiles: ServerTLSFiles?

        /// Creates a server.
        public init(port: Int, portName: String, protocol: String, hosts: [String], tlsMode: String?) {
            self.port = port
            self.portName = portName
            self.protocol = `protocol`
            self.hosts = hosts
            self.tlsMode = tlsMode
        }
    }

    /// Kind, namespace and name.
    public var id: RoutingObjectID
    /// `spec.selector`: the gateway workload's labels.
    public var selector: [String: String]
    /// `spec.servers`.
    public var servers: [Server]
    /// Where it was defined.
    public var source: SourceLocation
}

/// One route destination (`destination` + `weight`) of an http, tls or tcp route.
public struct RouteDestination: Sendable, Equatable {
    /// `destination.host`: a registered host or a Kubernetes service name.
    public var host: String
    /// `destination.subset`, defined by a DestinationRule for `host`.
    public var subset: String?
    /// `destination.port.number`.
    public var port: Int?
    /// `weight` (0 when unset).
    public var weight: Int

    /// Creates a destination.
    public init(host: String, subset: String? = nil, port: Int? = nil, weight: Int = 0) {
        self.host = host
        self.subset = subset
        self.port = port
        self.weight = weight
    }
}

/// One http, tls or tcp route of a VirtualService, with what its matches select on.
public struct VirtualServiceRoute: Sendable, Equatable {
    /// Which list it came from.
    public enum Kind: String, Sendable {
        case http, tls, tcp
    }

    /// http, tls or tcp.
    public var kind: Kind
    /// `name`, when given.
    public var name: String?
    /// Ports its `match` items name (empty: any port).
    public var matchPorts: [Int]
    /// Gateways its `match` items name (empty: the VirtualService's own `gateways`).
    public var matchGateways: [String]
    /// `sniHosts` of tls matches.
    public var sniHosts: [String]
    /// `route`: where matching traffic goes.
    public var destinations: [RouteDestination]
    /// Fields the route sets that Sluice does not model (`mirror`, `corsPolicy`, `directResponse`…).
    public var unappliedFields: [String]
    /// `match` of an http route, in order (empty: every request).
    public var httpMatches: [HTTPMatchRequest] = []
    /// `match` of a tls or tcp route, in order (empty: every connection).
    public var l4Matches: [L4Match] = []
    /// timeout, retries, headers, rewrite, redirect and fault of an http route.
    public var behaviour = HTTPRouteBehaviour()
}

/// One `match` item of a tls route (`TLSMatchAttributes`) or a tcp route (`L4MatchAttributes`).
public struct L4Match: Sendable, Equatable {
    /// `port`.
    public var port: Int?
    /// `sniHosts` (tls).
    public var sniHosts: [String] = []
    /// `destinationSubnets`.
    public var destinationSubnets: [CIDR] = []
    /// `gateways`.
    public var gateways: [String] = []
    /// `sourceLabels`.
    public var sourceLabels: [String: String] = [:]
    /// `sourceNamespace`.
    public var sourceNamespace: String?

    public init(port: Int? = nil, sniHosts: [String] = [], destinationSubnets: [CIDR] = [], gateways: [String] = [],
                sourceLabels: [String: String] = [:], sourceNamespace: String? = nil) {
        self.port = port
        self.sniHosts = sniHosts
        self.destinationSubnets = destinationSubnets
        self.gateways = gateways
        self.sourceLabels = sourceLabels
        self.sourceNamespace = sourceNamespace
    }
}

/// `networking.istio.io` VirtualService.
public struct VirtualService: Sendable, Equatable {
    /// Kind, namespace and name.
    public var id: RoutingObjectID
    /// `spec.hosts`.
    public var hosts: [String]
    /// `spec.gateways`: `mesh` (the sidecars, the default) and gateway names, optionally `namespace/name`.
    public var gateways: [String]
    /// `spec.exportTo`.
    public var exportTo: [String]
    /// `spec.http`, `spec.tls` and `spec.tcp`, in that order.
    public var routes: [VirtualServiceRoute]
    /// Where it was defined.
    public var source: SourceLocation
}

/// `networking.istio.io` DestinationRule.
public struct DestinationRule: Sendable, Equatable {
    /// Kind, namespace and name.
    public var id: RoutingObjectID
    /// `spec.host`.
    public var host: String
    /// `spec.subsets[].name`.
    public var subsets: [String]
    /// `spec.trafficPolicy.tls.mode` (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL), if any.
    public var tlsMode: String?
    /// `spec.exportTo`.
    public var exportTo: [String]
    /// Where it was defined.
    public var source: SourceLocation
    /// `spec.subsets`, with their labels and policies.
    public var subsetDetails: [DestinationSubset] = []
    /// `spec.trafficPolicy`.
    public var trafficPolicy: TrafficPolicy?
    /// `spec.workloadSelector.matchLabels`: the rule applies to these workloads only.
    public var workloadSelector: [String: String]?

    /// The policy for traffic to `subset` on `port`: the rule's, the subset's over it, then
    /// port-level settings.
    public func policy(subset: String?, port: Int?) -> TrafficPolicy {
        let base = trafficPolicy ?? TrafficPolicy()
        let subsetPolicy = subset.flatMap { name in subsetDetails.first { $0.name == name } }?.trafficPolicy
        return base.overridden(by: subsetPolicy).forPort(port)
    }

    /// True when some setting of the rule (top level, subset or port) has a `tls` other
    /// than DISABLE: the rule matters even without a VirtualService.
    public var appliesTLS: Bool {
        let policies = [trafficPolicy].compactMap { $0 } + subsetDetails.compactMap(\.trafficPolicy)
        return policies.contains { policy in
            ([policy.tls] + policy.portLevel.values.map(\.tls)).contains { $0 != nil && $0?.mode != "DISABLE" }
        }
    }
}

/// `networking.istio.io` Sidecar: what a namespace's (or selected workloads') sidecars see.
public struct SidecarResource: Sendable, Equatable {
    /// Kind, namespace and name.
    public var id: RoutingObjectID
    /// `spec.workloadSelector.labels`; nil applies to the whole namespace.
    public var workloadSelector: [String: String]?
    /// `spec.egress[].hosts` (`namespace/dnsName`).
    public var egressHosts: [String]
    /// `spec.outboundTrafficPolicy.mode`.
    public var outboundMode: OutboundTrafficPolicyMode?
    /// `spec.outboundTrafficPolicy.egressProxy.host`.
    public var egressProxyHost: String?
    /// Where it was defined.
    public var source: SourceLocation
    /// `spec.egress[]`: each listener's port (nil: every port) and hosts.
    public var egress: [EgressListener] = []
    /// `spec.outboundTrafficPolicy.egressProxy` (host, subset, port).
    public var egressProxy: RouteDestination?

    /// Creates a Sidecar resource.
    public init(
        id: RoutingObjectID, workloadSelector: [String: String]?, egressHosts: [String], outboundMode: OutboundTrafficPolicyMode?,
        egressProxyHost: String?, source: SourceLocation, egress: [EgressListener] = [], egressProxy: RouteDestination? = nil
    ) {
        self.id = id
        self.workloadSelector = workloadSelector
        self.egressHosts = egressHosts
        self.outboundMode = outboundMode
        self.egressProxyHost = egressProxyHost
        self.source = source
        self.egress = egress
        self.egressProxy = egressProxy
    }

    /// One `spec.egress` item.
    public struct EgressListener: Sendable, Equatable {
        /// `port.number`.
        public var port: Int?
        /// `hosts`, `namespace/dnsName`.
        public var hosts: [String]

        public init(port: Int? = nil, hosts: [String]) {
            self.port = port
            self.hosts = hosts
        }
    }
}

/// The routing objects of one load.
public struct RoutingObjects: Sendable, Equatable {
    /// Gateways.
    public var gateways: [IstioGateway] = []
    /// VirtualServices.
    public var virtualServices: [VirtualService] = []
    /// DestinationRules.
    public var destinationRules: [DestinationRule] = []
    /// Sidecars.
    public var sidecars: [SidecarResource] = []
    /// ASM's ASMEgressTrafficPolicies.
    public var egressTrafficPolicies: [ASMEgressTrafficPolicy] = []

    /// Creates an empty set.
    public init() {}

    /// How many objects there are.
    public var count: Int { gateways.count + virtualServices.count + destinationRules.count + sidecars.count + egressTrafficPolicies.count }

    mutating func append(_ other: RoutingObjects) {
        gateways += other.gateways
        virtualServices += other.virtualServices
        destinationRules += other.destinationRules
        sidecars += other.sidecars
        egressTrafficPolicies += other.egressTrafficPolicies
    }
}
