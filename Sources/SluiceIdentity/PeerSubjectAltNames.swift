import SluiceCore
public import X509

/// A MUTUAL Gateway server's `subjectAltNames` check (Istio's `ServerTLSSettings`, Envoy's
/// `match_typed_subject_alt_names` with exact matchers): the client's certificate must carry
/// one of the listed names as a DNS, URI, email or IP address SAN, compared exactly.
public enum PeerSubjectAltNames {
    /// Every DNS, URI, email and IP SAN of `certificate`, as text (IPs as `IPAddress` writes them).
    public static func names(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        var out: [String] = []
        for name in names {
            switch name {
            case .dnsName(let dns): out.append(dns)
            case .uniformResourceIdentifier(let uri): out.append(uri)
            case .rfc822Name(let email): out.append(email)
            case .ipAddress(let bytes): if let address = IPAddress(bytes: bytes.bytes) { out.append(address.description) }
            default: continue
            }
        }
        return out
    }

    /// Whether `certificate` carries one of `required` (an empty list requires nothing).
    public static func matches(_ certificate: Certificate, required: [String]) -> Bool {
        required.isEmpty || !Set(names(of: certificate)).isDisjoint(with: required)
    }
}
