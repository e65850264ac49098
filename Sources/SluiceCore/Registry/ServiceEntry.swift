/// One Istio `ServiceEntry`: hosts and addresses that the mesh may reach, on which ports,
/// and how the upstream is found. Only the fields that decide egress are modelled.
public struct ServiceEntry: Sendable, Equatable {
    /// Where the service runs relative to the mesh (Istio `location`).
    public enum Location: String, Sendable, Equatable {
        /// Outside the mesh (the default): an external API.
        case meshExternal = "MESH_EXTERNAL"
        /// Inside the mesh but not in the platform registry (VMs and the like).
        case meshInternal = "MESH_INTERNAL"
    }

    /// How the upstream address is found (Istio `resolution`).
    public enum Resolution: String, Sendable, Equatable {
        /// Forward to the address the client dialed.
        case none = "NONE"
        /// Forward to the entry's endpoint IPs.
        case `static` = "STATIC"
        /// Resolve the host name (or the endpoints' names) and use every address.
        case dns = "DNS"
        /// Resolve the host name and use one address per connection.
        case dnsRoundRobin = "DNS_ROUND_ROBIN"
    }

    /// `metadata.name`.
    public var name: String
    /// `metadata.namespace`; `default` when absent, as kubectl would apply it.
    public var namespace: String
    /// `spec.hosts`: lowercase DNS names or `*.suffix` wildcards, as written.
    public var hosts: [String]
    /// `spec.addresses`: virtual IPs or CIDRs that identify the service for opaque TCP.
    public var addresses: [CIDR]
    /// `spec.ports`: the only ports on which the hosts are registered.
    public var ports: [ServicePort]
    /// `spec.location`.
    public var location: Location
    /// `spec.resolution`.
    public var resolution: Resolution
    /// `spec.endpoints`: the upstreams for STATIC (IPs) and DNS (names) resolution.
    public var endpoints: [WorkloadEndpoint]
    /// `spec.exportTo`: namespaces that see the entry; empty means all (`*`).
    public var exportTo: [String]
    /// `spec.workloadSelector` was given: the endpoints are pods Sluice cannot discover.
    public var selectsWorkloads: Bool
    /// `spec.subjectAltNames`: what an originated TLS connection (DestinationRule SIMPLE /
    /// MUTUAL without a list of its own) requires of the server's certificate.
    public var subjectAltNames: [String]
    /// Where the entry was defined, for diagnostics and `sluice explain`.
    public var source: SourceLocation

    /// Creates an entry; defaults follow Istio's (MESH_EXTERNAL, resolution NONE, namespace `default`).
    public init(
        name: String,
        namespace: String = "default",
        hosts: [String],
        addresses: [CIDR] = [],
        ports: [ServicePort],
        location: Location = .meshExternal,
        resolution: Resolution = .none,
        endpoints: [WorkloadEndpoint] = [],
        exportTo: [String] = [],
        selectsWorkloads: Bool = false,
        subjectAltNames: [String] = [],
        source: SourceLocation = SourceLocation(path: "<memory>", line: 0)
    ) {
        self.name = name
        self.namespace = namespace
        self.hosts = hosts
        self.addresses = addresses
        self.ports = ports
        self.location = location
        self.resolution = resolution
        self.endpoints = endpoints
        self.exportTo = exportTo
        self.selectsWorkloads = selectsWorkloads
        self.subjectAltNames = subjectAltNames
        self.source = source
    }

    /// `ServiceEntry namespace/name`, the way diagnostics and reasons name the resource.
    public var resourceName: String { "ServiceEntry \(namespace)/\(name)" }

    /// Whether a workload in `namespace` sees this entry, by Istio's `exportTo` rules: no list
    /// or `*` is every namespace, `.` the entry's own, `~` none, a name that namespace.
    public func isVisible(fromNamespace namespace: String) -> Bool {
        if exportTo.isEmpty { return true }
        return exportTo.contains { target in
            switch target {
            case "*": return true
            case ".": return self.namespace == namespace
            case "~": return false
            default: return target == namespace
            }
        }
    }

    /// `namespace/name`: what identifies the object, as Kubernetes does.
    public var key: String { "\(namespace)/\(name)" }

    /// The declared port with this number, if any.
    public func port(number: Int) -> ServicePort? {
        ports.first { $0.number == number }
    }
}

/// A port of a `ServiceEntry` (Istio `ServicePort`).
public struct ServicePort: Sendable, Equatable {
    /// The port the client dials.
    public var number: Int
    /// The port's name; endpoint `ports` maps refer to it.
    public var name: String
    /// The application protocol, which decides whether Host or SNI can match it.
    public var `protocol`: PortProtocol
    /// The port on the endpoints, when it differs from `number`.
    public var targetPort: Int?

    /// Creates a port.
    public init(number: Int, name: String, protocol: PortProtocol, targetPort: Int? = nil) {
        self.number = number
        self.name = name
        self.protocol = `protocol`
        self.targetPort = targetPort
    }
}

/// The protocol declared on a ServiceEntry port. Istio's names, case-insensitive in YAML.
///
/// The protocol decides what may flow on the port, as Istio's listeners do: an HTTP port
/// carries HTTP routed by Host, a TLS/HTTPS port carries TLS routed by SNI (or by address when
/// the entry has one), an opaque port carries any bytes routed by address alone, and a port
/// without a protocol has it detected per connection.
public enum PortProtocol: Sendable, Equatable, CustomStringConvertible {
    /// HTTP/1.x.
    case http
    /// TLS carrying HTTP; matched by SNI.
    case https
    /// HTTP/2 in clear text.
    case http2
    /// gRPC (HTTP/2).
    case grpc
    /// Opaque TLS; matched by SNI.
    case tls
    /// Opaque TCP.
    case tcp
    /// MongoDB wire protocol; opaque TCP to Sluice.
    case mongo
    /// Another protocol Istio knows, upper-cased: MYSQL, REDIS, THRIFT (opaque TCP),
    /// GRPC-WEB and HTTP_PROXY (HTTP), UDP (no TCP traffic at all).
    case other(String)
    /// No protocol (the empty string), or a name Istio does not know (kept as written):
    /// the protocol is detected per connection, as Istio's protocol sniffing does.
    case detected(String)

    /// Istio's other protocol names, upper-cased, and the family each belongs to.
    static let otherNames: [String: ProtocolFamilies] = [
        "MYSQL": .opaque, "REDIS": .opaque, "THRIFT": .opaque,
        "GRPC-WEB": .http, "HTTP_PROXY": .http, "UDP": [],
    ]

    /// Parses an Istio protocol name, case-insensitively. A name Istio does not know gives
    /// `.detected(name)`: the decoder warns, and the port is treated as one without a protocol.
    public init(istioName: String) {
        switch istioName.uppercased() {
        case "HTTP": self = .http
        case "HTTPS": self = .https
        case "HTTP2": self = .http2
        case "GRPC": self = .grpc
        case "TLS": self = .tls
        case "TCP": self = .tcp
        case "MONGO": self = .mongo
        case "": self = .detected("")
        case let other where PortProtocol.otherNames[other] != nil: self = .other(other)
        default: self = .detected(istioName)
        }
    }

    /// The Istio spelling (`HTTP`, `TLS`…).
    public var description: String {
        switch self {
        case .http: return "HTTP"
        case .https: return "HTTPS"
        case .http2: return "HTTP2"
        case .grpc: return "GRPC"
        case .tls: return "TLS"
        case .tcp: return "TCP"
        case .mongo: return "MONGO"
        case .other(let name): return name
        case .detected(let name): return name.isEmpty ? "(unset)" : "\(name) (unrecognised)"
        }
    }

    /// The kind of traffic the port carries, for lookups.
    public var family: ProtocolFamilies {
        switch self {
        case .http, .http2, .grpc: return .http
        case .https, .tls: return .tls
        case .tcp, .mongo: return .opaque
        case .other(let name): return PortProtocol.otherNames[name] ?? .opaque
        case .detected: return .detected
        }
    }

    /// HTTP, HTTP2, GRPC (and GRPC-WEB, HTTP_PROXY): requests are matched by their Host header.
    public var isHTTP: Bool { family == .http }

    /// HTTPS and TLS: connections are matched by their SNI, or by address.
    public var isTLS: Bool { family == .tls }

    /// TCP, MONGO, MYSQL, REDIS, THRIFT: bytes are forwarded without inspection and matched by
    /// address alone (Istio ignores `hosts` for them), so any kind of traffic may flow.
    public var isOpaque: Bool { family == .opaque }
}

/// One `spec.endpoints` item (Istio `WorkloadEntry`).
public struct WorkloadEndpoint: Sendable, Equatable {
    /// An IP address (STATIC) or a host name (DNS).
    public var address: String
    /// Port overrides by service port name.
    public var ports: [String: Int]
    /// Labels, kept for `sluice explain`.
    public var labels: [String: String]
    /// Load-balancing weight; nil when unset.
    public var weight: Int?
    /// Istio `network`, kept for `sluice explain`.
    public var network: String?
    /// Istio `locality`, kept for `sluice explain`.
    public var locality: String?

    /// Creates an endpoint.
    public init(
        address: String,
        ports: [String: Int] = [:],
        labels: [String: String] = [:],
        weight: Int? = nil,
        network: String? = nil,
        locality: String? = nil
    ) {
        self.address = address
        self.ports = ports
        self.labels = labels
        self.weight = weight
        self.network = network
        self.locality = locality
    }

    /// The port to dial on this endpoint for `port`: its own override, else the target port.
    public func upstreamPort(for port: ServicePort) -> Int {
        ports[port.name] ?? port.targetPort ?? port.number
    }
}

/// A position in a configuration file.
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The file as it was named when loaded.
    public var path: String
    /// 1-based line number.
    public var line: Int

    /// Creates a location.
    public init(path: String, line: Int) {
        self.path = path
        self.line = line
    }

    /// `path:line`.
    public var description: String { "\(path):\(line)" }
}
