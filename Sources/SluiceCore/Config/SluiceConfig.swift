/// Istio's outbound traffic policy: what happens to destinations the registry does not know.
public enum OutboundTrafficPolicyMode: String, Sendable {
    /// Unregistered destinations pass through to where the client was going (Istio's default).
    case allowAny = "ALLOW_ANY"
    /// Unregistered destinations are refused (HTTP 502, or the connection is closed).
    case registryOnly = "REGISTRY_ONLY"
}

/// How the sidecar talks to the egress gateway.
public enum EgressGatewayProtocol: String, Sendable {
    /// Istio's way: HTTP to the gateway's HTTP port with the Host kept, TLS to its TLS port
    /// routed by SNI. Opaque TCP cannot be routed this way and goes direct.
    case istio
    /// An HTTP CONNECT tunnel to the gateway's CONNECT port; works with Squid and any standard
    /// forward proxy, and carries opaque TCP too.
    case connect
}

/// Where and how registered traffic leaves through an egress gateway (sidecar only).
public struct EgressGatewayConfig: Sendable, Equatable {
    /// Gateway addresses (IPs or DNS names), tried in order: a refused or timed-out connect
    /// moves on to the next.
    public let addresses: [String]
    /// How to talk to the gateway.
    public let `protocol`: EgressGatewayProtocol
    /// The gateway's plain-HTTP port (`ports.http`).
    public let httpPort: Int
    /// The gateway's TLS port (`ports.tls`).
    public let tlsPort: Int
    /// The gateway's CONNECT port (`ports.connect`).
    public let connectPort: Int
    /// Which registered hosts go via the gateway: `*`, `*.suffix` or exact names.
    public let hosts: [String]
    /// How long one connect attempt to one gateway address may take.
    public let connectTimeout: Duration
    /// `tls`: ISTIO_MUTUAL to the gateway with the workload certificate; nil is plaintext.
    public let tls: GatewayClientTLS?

    /// Creates a gateway config with Istio's default ports and every host routed.
    public init(
        addresses: [String],
        protocol: EgressGatewayProtocol = .istio,
        httpPort: Int = 80,
        tlsPort: Int = 443,
        connectPort: Int = 15080,
        hosts: [String] = ["*"],
        connectTimeout: Duration = .seconds(1),
        tls: GatewayClientTLS? = nil
    ) {
        self.tls = tls
        self.addresses = addresses
        self.protocol = `protocol`
        self.httpPort = httpPort
        self.tlsPort = tlsPort
        self.connectPort = connectPort
        self.hosts = hosts
        self.connectTimeout = connectTimeout
    }

    /// Whether traffic for `host` goes via the gateway: some glob in `hosts` matches it.
    /// `*` matches everything, `*.example.com` any name under example.com (not example.com
    /// itself), anything else only itself. Case and a trailing dot are ignored.
    public func routes(host: String) -> Bool {
        let name = Authority(host)?.host ?? host.lowercased()
        return hosts.contains { EgressGatewayConfig.glob($0, matches: name) }
    }

    static func glob(_ pattern: String, matches name: String) -> Bool {
        let pattern = pattern.lowercased()
        if pattern == "*" { return true }
        if pattern.hasPrefix("*.") { return name.hasSuffix(pattern.dropFirst(1)) && name.count > pattern.count - 1 }
        return pattern == name
    }
}

/// The protocol a gateway listener speaks.
public enum ListenerProtocol: String, Sendable {
    /// Plain HTTP/1.x, routed by Host.
    case http = "HTTP"
    /// TLS passthrough, routed by SNI.
    case tls = "TLS"
    /// HTTP CONNECT tunnels.
    case connect = "CONNECT"
}

/// One gateway listener (`listeners[]`).
public struct ListenerConfig: Sendable, Equatable {
    /// The port to listen on.
    public let port: Int
    /// What it speaks.
    public let `protocol`: ListenerProtocol
    /// The local address to bind (an IP).
    public let address: String
    /// `tls.mode`: ISTIO_MUTUAL terminates mutual TLS before the protocol above is spoken.
    public let tls: ServerTLSMode
    /// For SIMPLE / MUTUAL (from a Gateway server): the certificate files it presents.
    public var serverTLSFiles: ServerTLSFiles?
    /// The Gateway servers on this port when they differ in TLS mode or certificate: each
    /// connection is then given the one its ClientHello's SNI names (`ListenerTLSServer.choose`),
    /// and `tls` / `serverTLSFiles` are the first one's. Empty: `tls` serves every connection.
    public var tlsServers: [ListenerTLSServer] = []

    /// Whether the TLS handling is picked per connection by SNI.
    public var selectsTLSServerByName: Bool { self.tlsServers.count > 1 }

    /// Creates a listener bound to all IPv4 addresses by default.
    public init(port: Int, protocol: ListenerProtocol, address: String = "0.0.0.0", tls: ServerTLSMode = .passthrough) {
        self.tls = tls
        self.port = port
        self.protocol = `protocol`
        self.address = address
    }

    /// The gateway's default listeners: HTTP :80, TLS :443, CONNECT :15080.
    public static let defaults: [ListenerConfig] = [
        ListenerConfig(port: 80, protocol: .http),
        ListenerConfig(port: 443, protocol: .tls),
        ListenerConfig(port: 15080, protocol: .connect),
    ]
}

/// Where and how the access log is written.
public struct AccessLogConfig: Sendable, Equatable {
    /// The file to append to; `/dev/stdout` by default.
    public let path: String
    /// `json` (Envoy/ASM field set, one object per line) or `text`.
    public let format: String
    /// False turns the access log off.
    public let enabled: Bool

    /// The formats `format` may name.
    public static let formats: Set<String> = ["json", "text"]

    /// Creates an access-log config; JSON to stdout by default.
    public init(path: String = "/dev/stdout", format: String = "json", enabled: Bool = true) {
        self.path = path
        self.format = format
        self.enabled = enabled
    }
}

/// Bounds that keep one bad client from holding resources forever.
public struct Limits: Sendable, Equatable {
    /// Largest HTTP request head accepted; beyond it the answer is 431.
    public let maxRequestHeadBytes: Int
    /// How long a complete request head may take to arrive.
    public let headerReadTimeout: Duration
    /// How long to wait for the first bytes before treating a connection as opaque TCP.
    public let detectionTimeout: Duration
    /// How long open connections may finish after shutdown starts.
    public let drainPeriod: Duration
    /// How long one upstream connect attempt may take.
    public let connectTimeout: Duration
    /// How long a connection may stay silent in both directions before it is closed.
    public let idleTimeout: Duration
    /// How long an upstream may take to start answering an HTTP request (Envoy's route
    /// timeout, 15 s by default); past it the answer is 504 with flag UT.
    public let upstreamTimeout: Duration
    /// Most header fields one request may carry (Envoy's `max_headers_count`); beyond: 431.
    public let maxRequestHeaders: Int
    /// Most downstream connections open at once; beyond it new ones are closed at accept.
    public let maxConnections: Int

    /// Creates limits with the documented defaults.
    public init(
        maxRequestHeadBytes: Int = 65536,
        maxRequestHeaders: Int = 100,
        maxConnections: Int = 16384,
        headerReadTimeout: Duration = .seconds(10),
        detectionTimeout: Duration = .seconds(5),
        drainPeriod: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(1),
        idleTimeout: Duration = .seconds(3600),
        upstreamTimeout: Duration = .seconds(15)
    ) {
        self.upstreamTimeout = upstreamTimeout
        self.maxRequestHeaders = maxRequestHeaders
        self.maxConnections = maxConnections
        self.maxRequestHeadBytes = maxRequestHeadBytes
        self.headerReadTimeout = headerReadTimeout
        self.detectionTimeout = detectionTimeout
        self.drainPeriod = drainPeriod
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
    }
}

/// The contents of `sluice.yaml`.
public struct SluiceConfig: Sendable, Equatable {
    /// The outbound traffic policy; nil means the command's default (sidecar ALLOW_ANY,
    /// gateway REGISTRY_ONLY).
    public let mode: OutboundTrafficPolicyMode?
    /// `outboundTrafficPolicy.audit`: decide as the mode says, but let would-be denials
    /// through, logged and counted (the way to move a workload to REGISTRY_ONLY safely).
    public let audit: Bool
    /// Registry files and directories, resolved against the config file's directory.
    public let registryPaths: [String]
    /// The egress gateway for registered traffic; nil sends it direct.
    public let egressGateway: EgressGatewayConfig?
    /// Gateway listeners.
    public let listeners: [ListenerConfig]
    /// Access log settings.
    public let accessLog: AccessLogConfig
    /// Size and time limits.
    public let limits: Limits
    /// `dns:` (the DNS proxy; see SluiceConfig+DNS.swift).
    public var dns: DNSConfig = DNSConfig()
    /// `udp:` (the NFQUEUE reader; see SluiceConfig+DNS.swift).
    public var udp: UDPConfig = UDPConfig()

    /// Creates a config; every field defaults to what an empty `sluice.yaml` means.
    public init(
        mode: OutboundTrafficPolicyMode? = nil,
        audit: Bool = false,
        registryPaths: [String] = [],
        egressGateway: EgressGatewayConfig? = nil,
        listeners: [ListenerConfig] = ListenerConfig.defaults,
        accessLog: AccessLogConfig = AccessLogConfig(),
        limits: Limits = Limits()
    ) {
        self.mode = mode
        self.audit = audit
        self.registryPaths = registryPaths
        self.egressGateway = egressGateway
        self.listeners = listeners
        self.accessLog = accessLog
        self.limits = limits
    }
}
