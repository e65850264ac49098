/// The labels Istio's standard metrics give the caller, as the gateway knows it from the
/// downstream connection: `source_principal` (its SPIFFE ID, `spiffe://…`, or `unknown`),
/// `source_workload_namespace` (the `ns/<namespace>/` segment of that ID, or `unknown`) and
/// `connection_security_policy` (`mutual_tls` or `none`), spelled as Istio's stats filter
/// writes them (istio.io/latest/docs/reference/config/metrics/).
public struct SourceIdentityLabels: Sendable, Hashable {
    public let principal: String
    public let namespace: String
    public let securityPolicy: String

    /// `connection_security_policy` values.
    public static let mutualTLS = "mutual_tls"
    public static let none = "none"

    /// A caller without a verified certificate.
    public static let plaintext = SourceIdentityLabels(peerURISAN: nil, mutualTLS: false)

    /// The labels for a caller whose certificate's URI SAN is `peerURISAN` (nil without one)
    /// and whose connection was, or was not, mutual TLS.
    public init(peerURISAN: String?, mutualTLS: Bool) {
        if let peerURISAN, let id = try? SPIFFEID(parsing: peerURISAN) {
            self.principal = id.description
            self.namespace = Self.namespace(of: id) ?? MetricLabelValues.unknown
        } else {
            self.principal = MetricLabelValues.unknown
            self.namespace = MetricLabelValues.unknown
        }
        self.securityPolicy = mutualTLS ? Self.mutualTLS : Self.none
    }

    /// A copy whose principal and namespace are `value` (the cap's `other`).
    public init(capped value: String, securityPolicy: String) {
        self.principal = value
        self.namespace = value
        self.securityPolicy = securityPolicy
    }

    /// Istio's `ns/<namespace>/sa/<service-account>` path: the namespace; nil for another shape.
    static func namespace(of id: SPIFFEID) -> String? {
        let parts = id.path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == "ns", !parts[1].isEmpty else { return nil }
        return String(parts[1])
    }
}
