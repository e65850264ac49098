public import X509

/// A MUTUAL Gateway server's `subjectAltNames` check (Istio's `ServerTLSSettings`, Envoy's
/// `match_typed_subject_alt_names` with exact matchers): the client's certificate must carry
/// one of the listed names as a DNS, URI, email or IP address SAN, compared exactly.
public enum PeerSubjectAltNames {
    /// Every DNS, URI, email and IP SAN of `certificate`, as text (IPs in their usual form).
    public static func names(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        var out: [String] = []
        for name in names {
            switch name {
            case .dnsName(let dns): out.append(dns)
            case .uniformResourceIdentifier(let uri): out.append(uri)
            case .rfc822Name(let email): out.append(email)
            case .ipAddress(let bytes): if let text = Self.ipText(Array(bytes.bytes)) { out.append(text) }
            default: continue
            }
        }
        return out
    }

    /// Whether `certificate` carries one of `required` (an empty list requires nothing).
    public static func matches(_ certificate: Certificate, required: [String]) -> Bool {
        required.isEmpty || !Set(names(of: certificate)).isDisjoint(with: required)
    }

    private static func ipText(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4:
            return bytes.map(String.init).joined(separator: ".")
        case 16:
            // RFC 5952's short form is what Envoy prints; a fully written form is matched too by
            // listing it, so the compressed form is produced here.
            var groups: [UInt16] = []
            for index in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
            var bestStart = -1, bestLength = 0, start = -1
            for (index, group) in groups.enumerated() {
                if group == 0 {
                    if start < 0 { start = index }
                    if index - start + 1 > bestLength, index - start + 1 >= 2 { bestStart = start; bestLength = index - start + 1 }
                } else {
                    start = -1
                }
            }
            func hex(_ slice: ArraySlice<UInt16>) -> String { slice.map { String($0, radix: 16) }.joined(separator: ":") }
            guard bestStart >= 0 else { return hex(groups[...]) }
            return hex(groups[..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
        default:
            return nil
        }
    }
}
