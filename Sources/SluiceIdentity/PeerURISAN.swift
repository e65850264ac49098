public import SluiceCore
public import X509

/// The caller's identity as a Gateway server with `tls.mode: MUTUAL` (certificate files,
/// verified by BoringSSL against the server's `caCertificates`) records it: Envoy's
/// `%DOWNSTREAM_PEER_URI_SAN%` is every URI SAN of the client's certificate joined with `,`
/// (`absl::StrJoin(uriSanPeerCertificate(), ",")` in Envoy's stream-info formatter), and the
/// principal AuthorizationPolicy matches is its SPIFFE ID when it has one. ISTIO_MUTUAL gets
/// the same from `PeerChainVerifier`, whose certificates carry exactly one SPIFFE URI SAN.
public struct PeerURISAN: Sendable, Equatable {
    /// The URI SANs joined with `,`; nil when the certificate has none.
    public let text: String?
    /// The first URI SAN that is a SPIFFE ID, if any.
    public let spiffeID: SPIFFEID?

    /// The names of `certificate`, the client's leaf.
    public init(of certificate: Certificate) {
        var uris: [String] = []
        if let names = try? certificate.extensions.subjectAlternativeNames {
            for case .uniformResourceIdentifier(let uri) in names { uris.append(uri) }
        }
        self.text = uris.isEmpty ? nil : uris.joined(separator: ",")
        self.spiffeID = uris.lazy.compactMap { try? SPIFFEID(parsing: $0) }.first
    }
}
