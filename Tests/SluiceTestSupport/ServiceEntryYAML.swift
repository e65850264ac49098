/// A ServiceEntry (networking.istio.io/v1) written as the YAML a registry file holds, built
/// in code: the tests' registries without a copy of the same dozen lines in each.
///
///     ServiceEntryYAML.http("aliyun", host: "aliyun.com", port: 80).yaml
///     ServiceEntryYAML.ports("aliyun", host: "aliyun.com", .http(80), .tls(443, targetPort: 8443)).yaml
///     ServiceEntryYAML.registry(.http(...), .tcp(...))   // entries joined by `---`
public struct ServiceEntryYAML: Sendable {
    public struct Port: Sendable {
        public var number: Int
        public var name: String
        public var `protocol`: String
        /// The endpoints' port when it differs from `number`; not written when nil.
        public var targetPort: Int?

        public init(number: Int, name: String, protocol: String, targetPort: Int? = nil) {
            self.number = number
            self.name = name
            self.protocol = `protocol`
            self.targetPort = targetPort
        }

        /// Port `number` named `http`, protocol HTTP.
        public static func http(_ number: Int, targetPort: Int? = nil) -> Port {
            Port(number: number, name: "http", protocol: "HTTP", targetPort: targetPort)
        }

        /// Port `number` named `tls`, protocol TLS (decided by SNI).
        public static func tls(_ number: Int, targetPort: Int? = nil) -> Port {
            Port(number: number, name: "tls", protocol: "TLS", targetPort: targetPort)
        }

        var yaml: String {
            let target = self.targetPort.map { ", targetPort: \($0)" } ?? ""
            return "{number: \(self.number), name: \(self.name), protocol: \(self.protocol)\(target)}"
        }
    }

    public var name: String
    public var hosts: [String]
    public var addresses: [String]
    public var ports: [Port]
    /// `NONE`, `STATIC`, `DNS`, `DNS_ROUND_ROBIN`.
    public var resolution: String
    /// Endpoint addresses (for `STATIC`); none written when empty.
    public var endpoints: [String]
    /// `MESH_EXTERNAL` unless set (not written then: Istio's default).
    public var location: String?

    public init(
        name: String,
        hosts: [String],
        addresses: [String] = [],
        ports: [Port],
        resolution: String,
        endpoints: [String] = [],
        location: String? = nil
    ) {
        self.name = name
        self.hosts = hosts
        self.addresses = addresses
        self.ports = ports
        self.resolution = resolution
        self.endpoints = endpoints
        self.location = location
    }

    /// An HTTP port of `host`, STATIC to `endpoint` (loopback by default).
    public static func http(_ name: String, host: String, port: Int, endpoint: String = "127.0.0.1") -> ServiceEntryYAML {
        .ports(name, host: host, .http(port), endpoint: endpoint)
    }

    /// A TLS port of `host` (decided by SNI), STATIC to `endpoint`, on `targetPort` there
    /// when given.
    public static func tls(
        _ name: String, host: String, port: Int, targetPort: Int? = nil, endpoint: String = "127.0.0.1"
    ) -> ServiceEntryYAML {
        .ports(name, host: host, .tls(port, targetPort: targetPort), endpoint: endpoint)
    }

    /// The `ports` of `host`, STATIC to `endpoint` (loopback by default).
    public static func ports(_ name: String, host: String, _ ports: Port..., endpoint: String = "127.0.0.1") -> ServiceEntryYAML {
        ServiceEntryYAML(name: name, hosts: [host], ports: ports, resolution: "STATIC", endpoints: [endpoint])
    }

    /// An opaque TCP port on `address` (decided by address), resolution NONE.
    public static func tcp(_ name: String, host: String, address: String, port: Int) -> ServiceEntryYAML {
        ServiceEntryYAML(
            name: name,
            hosts: [host],
            addresses: [address],
            ports: [Port(number: port, name: "tcp", protocol: "TCP")],
            resolution: "NONE"
        )
    }

    /// The entry as one YAML document.
    public var yaml: String {
        var lines = [
            "apiVersion: networking.istio.io/v1",
            "kind: ServiceEntry",
            "metadata: {name: \(self.name)}",
            "spec:",
            "  hosts: [\(self.hosts.joined(separator: ", "))]",
        ]
        if !self.addresses.isEmpty { lines.append("  addresses: [\(self.addresses.joined(separator: ", "))]") }
        lines.append("  ports: [\(self.ports.map(\.yaml).joined(separator: ", "))]")
        if let location = self.location { lines.append("  location: \(location)") }
        lines.append("  resolution: \(self.resolution)")
        if !self.endpoints.isEmpty {
            lines.append("  endpoints: [\(self.endpoints.map { "{address: \($0)}" }.joined(separator: ", "))]")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A registry file of `entries`, one YAML document each.
    public static func registry(_ entries: ServiceEntryYAML...) -> String {
        entries.map(\.yaml).joined(separator: "---\n")
    }
}
