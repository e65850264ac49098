/// A ServiceEntry (networking.istio.io/v1) written as the YAML a registry file holds, built
/// in code: the tests' registries without a copy of the same dozen lines in each.
///
///     ServiceEntryYAML.http("aliyun", host: "aliyun.com", port: 80).yaml
///     ServiceEntryYAML.registry(.http(...), .tcp(...))   // entries joined by `---`
public struct ServiceEntryYAML: Sendable {
    public struct Port: Sendable {
        public var number: Int
        public var name: String
        public var `protocol`: String

        public init(number: Int, name: String, protocol: String) {
            self.number = number
            self.name = name
            self.protocol = `protocol`
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
        .onePort(name, host: host, port: Port(number: port, name: "http", protocol: "HTTP"), endpoint: endpoint)
    }

    /// A TLS port of `host` (decided by SNI), STATIC to `endpoint`.
    public static func tls(_ name: String, host: String, port: Int, endpoint: String = "127.0.0.1") -> ServiceEntryYAML {
        .onePort(name, host: host, port: Port(number: port, name: "tls", protocol: "TLS"), endpoint: endpoint)
    }

    private static func onePort(_ name: String, host: String, port: Port, endpoint: String) -> ServiceEntryYAML {
        ServiceEntryYAML(name: name, hosts: [host], ports: [port], resolution: "STATIC", endpoints: [endpoint])
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
        let ports = self.ports.map { "{number: \($0.number), name: \($0.name), protocol: \($0.protocol)}" }
        lines.append("  ports: [\(ports.joined(separator: ", "))]")
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
