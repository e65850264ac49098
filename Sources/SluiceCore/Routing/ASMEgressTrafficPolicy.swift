/// Alibaba Cloud Service Mesh's `istio.alibabacloud.com/v1beta1` ASMEgressTrafficPolicy: one
/// object that ASM turns into a Gateway, VirtualServices and DestinationRules sending the
/// listed workloads' traffic for the listed hosts through one egress gateway; other workloads
/// are sent to the BlackHoleCluster for those hosts ("ASMEgressTrafficPolicy CRD description",
/// Alibaba Cloud Service Mesh documentation).
public struct ASMEgressTrafficPolicy: Sendable, Equatable {
    /// `egressRules[].from[]`: which workloads.
    public struct From: Sendable, Equatable {
        /// `namespace`.
        public var namespace: String
        /// `workloadSelector` (labels); empty: every workload of the namespace.
        public var workloadSelector: [String: String]

        public init(namespace: String, workloadSelector: [String: String] = [:]) {
            self.namespace = namespace
            self.workloadSelector = workloadSelector
        }
    }

    /// `egressRules[].to[]`: which external service, on which ports.
    public struct To: Sendable, Equatable {
        /// `name`.
        public var name: String
        /// `hosts`.
        public var hosts: [String]
        /// `port.number`.
        public var port: Int
        /// `port.protocol` (HTTP, HTTPS, TLS, TCP), upper-cased.
        public var `protocol`: String
        /// `port.name`.
        public var portName: String
        /// `byEgressGateway.port`: the gateway port the sidecar sends to (default: `port`).
        public var gatewayPort: Int
        /// `httpsUpgrade.enabled` (HTTP only): the gateway originates TLS to the host.
        public var httpsUpgrade: Bool
        /// `httpsUpgrade.port`: the host's HTTPS port the gateway dials (ASM's default 443).
        public var httpsUpgradePort = 443

        public init(name: String, hosts: [String], port: Int, protocol: String, portName: String = "", gatewayPort: Int? = nil, httpsUpgrade: Bool = false) {
            self.name = name
            self.hosts = hosts
            self.port = port
            self.protocol = `protocol`
            self.portName = portName
            self.gatewayPort = gatewayPort ?? port
            self.httpsUpgrade = httpsUpgrade
        }
    }

    /// One `egressRules` item.
    public struct Rule: Sendable, Equatable {
        public var from: [From]
        public var to: [To]

        public init(from: [From], to: [To]) {
            self.from = from
            self.to = to
        }
    }

    /// Kind, namespace and name.
    public var id: RoutingObjectID
    /// `spec.byEgressGateway.name` (or `.host`): the egress gateway.
    public var gatewayName: String
    /// `spec.egressRules`.
    public var rules: [Rule]
    /// Where it was defined.
    public var source: SourceLocation

    public init(id: RoutingObjectID, gatewayName: String, rules: [Rule], source: SourceLocation) {
        self.id = id
        self.gatewayName = gatewayName
        self.rules = rules
        self.source = source
    }

    /// The gateway's Kubernetes Service: `name.namespace.svc.cluster.local`, or the host as
    /// written when it already is a DNS name.
    public var gatewayService: String {
        gatewayName.contains(".") ? gatewayName : "\(gatewayName).\(id.namespace).svc.cluster.local"
    }

    /// The gateway's short name (its pods carry the label `istio: <name>`).
    public var gatewayShortName: String {
        String(gatewayName.split(separator: ".").first ?? Substring(gatewayName))
    }
}
