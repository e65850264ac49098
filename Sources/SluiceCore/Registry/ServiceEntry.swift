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
        self.source = source
    }

    /// `ServiceEntry namespace/name`, the way diagnostics and reasons name the resource.
    public var resourceName: String { "ServiceEntry \(namespace)/\(name)" }

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
    /// Another protocol Istio knows (MYSQL, REDIS, UDP…), or the empty string when the port
    /// left it unset for protocol sniffing. Treated as opaque TCP.
    case unknown(String)

    /// Istio's protocol names that Sluice accepts, upper-cased; anything else is a config error.
    static let knownOpaqueNames: Set<String> = ["MYSQL", "REDIS", "THRIFT", "UDP", "GRPC-WEB", "HTTP_PROXY"]

    /// Parses an Istio protocol name, case-insensitively; nil when Istio would reject it.
    public init?(istioName: String) {
        switch istioName.uppercased() {
        case "HTTP": self = .http
        case "HTTPS": self = .https
        case "HTTP2": self = .http2
        case "GRPC": self = .grpc
        case "TLS": self = .tls
        case "TCP": self = .tcp
        case "MONGO": self = .mongo
        case "": self = .unknown("")
        case let other where PortProtocol.knownOpaqueNames.contains(other): self = .unknown(other)
        default: return nil
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
        case .unknown(let name): return name.isEmpty ? "(unset)" : name
        }
    }

    /// HTTP, HTTP2 and GRPC: requests on this port are matched by their Host header.
    public var isHTTP: Bool {
        switch self {
        case .http, .http2, .grpc: return true
        default: return false
        }
    }

    /// HTTPS and TLS: connections on this port are matched by their SNI.
    public var isTLS: Bool {
        switch self {
        case .https, .tls: return true
        default: return false
        }
    }

    /// TCP, MONGO and everything not HTTP or TLS: bytes are forwarded without inspection, so any
    /// kind of traffic on the port belongs to the entry (as Istio's TCP proxy would take it).
    public var isOpaque: Bool { !isHTTP && !isTLS }
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
