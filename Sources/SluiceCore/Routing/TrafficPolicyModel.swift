/// A DestinationRule's `trafficPolicy` (and a subset's, and `portLevelSettings`), as plain values.

/// `connectionPool`: Envoy's circuit-breaker thresholds. Past a limit Envoy does not queue
/// without bound: a connection beyond `maxConnections` waits as a pending request, a pending
/// request beyond `http1MaxPendingRequests` fails at once with 503 `UO` (upstream overflow).
public struct ConnectionPoolSettings: Sendable, Equatable {
    /// `tcp.maxConnections`.
    public var maxConnections: Int?
    /// `tcp.connectTimeout`.
    public var connectTimeout: Duration?
    /// `http.http1MaxPendingRequests`.
    public var http1MaxPendingRequests: Int?
    /// `http.http2MaxRequests`.
    public var http2MaxRequests: Int?
    /// `http.maxRequestsPerConnection`.
    public var maxRequestsPerConnection: Int?
    /// `http.maxRetries`: retries outstanding at once to the cluster.
    public var maxRetries: Int?
    /// `http.idleTimeout`.
    public var idleTimeout: Duration?
    /// `http.h2UpgradePolicy`: whether HTTP/1.1 connections to the destination become HTTP/2.
    public var h2UpgradePolicy: H2UpgradePolicy?
    /// `http.useClientProtocol`: the upstream speaks the client's protocol (Envoy's
    /// `use_downstream_protocol_config`); overrides `h2UpgradePolicy`.
    public var useClientProtocol: Bool?

    public init() {}
}

/// Istio's `ConnectionPoolSettings.HTTPSettings.H2UpgradePolicy`.
public enum H2UpgradePolicy: String, Sendable, Equatable {
    /// The mesh-wide default (Istio's is DO_NOT_UPGRADE).
    case `default` = "DEFAULT"
    case doNotUpgrade = "DO_NOT_UPGRADE"
    case upgrade = "UPGRADE"
}

/// `outlierDetection`: endpoints ejected after consecutive errors, for `baseEjectionTime`
/// times the number of ejections, never more than `maxEjectionPercent` of them at once.
public struct OutlierDetectionSettings: Sendable, Equatable {
    /// `consecutive5xxErrors`.
    public var consecutive5xxErrors: Int?
    /// `consecutiveGatewayErrors` (502, 503, 504 and connect failures).
    public var consecutiveGatewayErrors: Int?
    /// `interval` (Istio's default 10s).
    public var interval: Duration?
    /// `baseEjectionTime` (Istio's default 30s).
    public var baseEjectionTime: Duration?
    /// `maxEjectionPercent` (Istio's default 10).
    public var maxEjectionPercent: Int?

    public init() {}
}

/// `tls` of a traffic policy: client TLS towards the destination (Istio's
/// `ClientTLSSettings`). Resolved for one destination by `UpstreamTLS.resolve`.
public struct ClientTLSSettings: Sendable, Equatable {
    /// DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL.
    public var mode: String
    /// `sni`.
    public var sni: String?
    /// `caCertificates`: a PEM file of the CAs the server's certificate must chain to.
    public var caCertificates: String?
    /// `clientCertificate` and `privateKey`: PEM files presented under MUTUAL.
    public var clientCertificate: String?
    public var privateKey: String?
    /// `credentialName`: a Secret, read from `--credentials-dir/<name>/`.
    public var credentialName: String?
    /// `subjectAltNames`: the names the server's certificate must carry (one of).
    public var subjectAltNames: [String]
    /// `insecureSkipVerify`: no verification of the server's certificate at all.
    public var insecureSkipVerify: Bool
    /// Keys Sluice reads but does not apply (`caCrl`).
    public var otherFields: [String]

    public init(
        mode: String, sni: String? = nil, caCertificates: String? = nil, clientCertificate: String? = nil, privateKey: String? = nil,
        credentialName: String? = nil, subjectAltNames: [String] = [], insecureSkipVerify: Bool = false, otherFields: [String] = []
    ) {
        self.mode = mode
        self.sni = sni
        self.caCertificates = caCertificates
        self.clientCertificate = clientCertificate
        self.privateKey = privateKey
        self.credentialName = credentialName
        self.subjectAltNames = subjectAltNames
        self.insecureSkipVerify = insecureSkipVerify
        self.otherFields = otherFields
    }
}

/// A traffic policy: connection pool, outlier detection, load balancer, TLS.
public struct TrafficPolicy: Sendable, Equatable {
    public var connectionPool: ConnectionPoolSettings?
    public var outlierDetection: OutlierDetectionSettings?
    /// `loadBalancer.simple`: ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH.
    public var loadBalancer: String?
    public var tls: ClientTLSSettings?
    /// `portLevelSettings`, by port number.
    public var portLevel: [Int: TrafficPolicy] = [:]

    public init() {}

    /// The settings for `port`: a port-level setting replaces the top-level one field by
    /// field (Istio: "port-level settings override the destination-level settings").
    public func forPort(_ port: Int?) -> TrafficPolicy {
        guard let port, let level = portLevel[port] else { return self }
        var merged = self
        merged.portLevel = [:]
        if let value = level.connectionPool { merged.connectionPool = value }
        if let value = level.outlierDetection { merged.outlierDetection = value }
        if let value = level.loadBalancer { merged.loadBalancer = value }
        if let value = level.tls { merged.tls = value }
        return merged
    }

    /// A subset's policy over the rule's: the subset's fields win (DestinationRule reference).
    public func overridden(by subset: TrafficPolicy?) -> TrafficPolicy {
        guard let subset else { return self }
        var merged = self
        if let value = subset.connectionPool { merged.connectionPool = value }
        if let value = subset.outlierDetection { merged.outlierDetection = value }
        if let value = subset.loadBalancer { merged.loadBalancer = value }
        if let value = subset.tls { merged.tls = value }
        for (port, level) in subset.portLevel { merged.portLevel[port] = level }
        return merged
    }

    /// True when nothing is set.
    public var isEmpty: Bool { self == TrafficPolicy() }
}

/// `subsets[]` of a DestinationRule.
public struct DestinationSubset: Sendable, Equatable {
    public var name: String
    /// `labels`: the endpoints (ServiceEntry `endpoints[].labels`) in the subset.
    public var labels: [String: String]
    public var trafficPolicy: TrafficPolicy?

    public init(name: String, labels: [String: String] = [:], trafficPolicy: TrafficPolicy? = nil) {
        self.name = name
        self.labels = labels
        self.trafficPolicy = trafficPolicy
    }
}
