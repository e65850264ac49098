/// How a forward's upstream connection is secured: a DestinationRule's `tls` (or the
/// `egressGateway.tls` shorthand) resolved for one destination. Indirect, so a `Decision`
/// carrying it stays one pointer larger.
public indirect enum UpstreamTLS: Sendable, Hashable, CustomStringConvertible {
    /// ISTIO_MUTUAL: the workload certificate from `--certs`, the peer checked against the
    /// mesh root and the expected SPIFFE IDs (the sidecar's hop to the egress gateway).
    case istioMutual(GatewayClientTLS)
    /// SIMPLE or MUTUAL: TLS origination to a server outside the mesh.
    case originate(OriginTLS)

    /// `ISTIO_MUTUAL sni=…` / `SIMPLE sni=… ca=system san=[…]`, for `explain`.
    public var description: String {
        switch self {
        case .istioMutual(let settings):
            return "ISTIO_MUTUAL" + (settings.sni.map { " sni=\($0)" } ?? "") + " san=[\(settings.subjectAltNames.joined(separator: ", "))]"
        case .originate(let origin):
            return origin.description
        }
    }

    /// The client TLS for a destination: `settings` (the DestinationRule's `tls` for the
    /// subset and port), `host` the destination host, `entrySubjectAltNames` the matched
    /// ServiceEntry's `subjectAltNames` (used when the rule names none, as Istio does).
    /// Nil for DISABLE or no setting.
    ///
    /// Istio's defaults (`ClientTLSSettings` reference; `VERIFY_CERTIFICATE_AT_CLIENT` and
    /// `ENABLE_AUTO_SNI`, on since 1.20): the SNI is the host unless `sni` is set; without
    /// `caCertificates` the system roots verify the server; without `subjectAltNames` (rule or
    /// entry) and without `sni`, the server's certificate must name the host (Envoy's
    /// auto SAN validation); `insecureSkipVerify` turns all verification off.
    public static func resolve(_ settings: ClientTLSSettings?, host: String, entrySubjectAltNames: [String] = []) -> UpstreamTLS? {
        guard let settings else { return nil }
        let names = settings.subjectAltNames.isEmpty ? entrySubjectAltNames : settings.subjectAltNames
        switch settings.mode {
        case "ISTIO_MUTUAL":
            return .istioMutual(names.isEmpty ? GatewayClientTLS(sni: settings.sni) : GatewayClientTLS(sni: settings.sni, subjectAltNames: names))
        case "SIMPLE", "MUTUAL":
            let sni = settings.sni ?? (IPAddress(host) == nil ? host : nil)
            let skip = settings.insecureSkipVerify
            return .originate(OriginTLS(
                mode: settings.mode == "MUTUAL" ? .mutual : .simple,
                sni: sni,
                caCertificates: settings.caCertificates,
                verifyCertificate: !skip,
                subjectAltNames: skip ? [] : names,
                verifyHostname: !skip && names.isEmpty && settings.sni == nil && sni != nil,
                clientCertificate: settings.mode == "MUTUAL" ? settings.clientCertificate : nil,
                privateKey: settings.mode == "MUTUAL" ? settings.privateKey : nil,
                credentialName: settings.credentialName))
        default:
            return nil
        }
    }
}

/// TLS origination to one destination, with every default applied (see `UpstreamTLS.resolve`).
public struct OriginTLS: Sendable, Hashable, CustomStringConvertible {
    /// SIMPLE presents no certificate; MUTUAL presents `clientCertificate`.
    public enum Mode: String, Sendable, Hashable {
        case simple = "SIMPLE"
        case mutual = "MUTUAL"
    }

    public var mode: Mode
    /// The SNI sent; nil when the host is an IP address and no `sni` was given.
    public var sni: String?
    /// A PEM file of the CAs to verify against; nil: the system roots (or the credential's `ca.crt`).
    public var caCertificates: String?
    /// False under `insecureSkipVerify`: any certificate is accepted.
    public var verifyCertificate: Bool
    /// The server's certificate must carry one of these (DNS or URI SANs); empty: no list.
    public var subjectAltNames: [String]
    /// The server's certificate must name `sni` (no list, no explicit `sni`).
    public var verifyHostname: Bool
    /// MUTUAL's PEM files.
    public var clientCertificate: String?
    public var privateKey: String?
    /// A Secret's name, read from `--credentials-dir/<name>/` (`credentialFiles`).
    public var credentialName: String?

    public init(
        mode: Mode, sni: String?, caCertificates: String? = nil, verifyCertificate: Bool = true, subjectAltNames: [String] = [],
        verifyHostname: Bool = true, clientCertificate: String? = nil, privateKey: String? = nil, credentialName: String? = nil
    ) {
        self.mode = mode
        self.sni = sni
        self.caCertificates = caCertificates
        self.verifyCertificate = verifyCertificate
        self.subjectAltNames = subjectAltNames
        self.verifyHostname = verifyHostname
        self.clientCertificate = clientCertificate
        self.privateKey = privateKey
        self.credentialName = credentialName
    }

    /// The files a `credentialName` stands for in `directory`, as Kubernetes mounts a Secret:
    /// a `kubernetes.io/tls` Secret's `tls.crt`, `tls.key`, `ca.crt`, else a generic Secret's
    /// `cert`, `key`, `cacert` (the two layouts Istio reads). `exists` says which are there.
    public static func credentialFiles(
        directory: String, name: String, exists: (String) -> Bool
    ) -> (certificate: String?, key: String?, ca: String?) {
        let base = (directory.hasSuffix("/") ? directory : directory + "/") + name + "/"
        func first(_ names: [String]) -> String? { names.map { base + $0 }.first(where: exists) }
        return (first(["tls.crt", "cert"]), first(["tls.key", "key"]), first(["ca.crt", "cacert"]))
    }

    /// `SIMPLE sni=api.example.com ca=/etc/ca.pem san=[…]`.
    public var description: String {
        var parts = [mode.rawValue]
        parts.append("sni=\(sni ?? "(none)")")
        if !verifyCertificate {
            parts.append("insecureSkipVerify")
        } else {
            parts.append("ca=\(caCertificates ?? (credentialName != nil ? "credential" : "system"))")
            if !subjectAltNames.isEmpty { parts.append("san=[\(subjectAltNames.joined(separator: ", "))]") }
            if verifyHostname, let sni { parts.append("san=[\(sni)]") }
        }
        if let credentialName { parts.append("credentialName=\(credentialName)") }
        if let clientCertificate { parts.append("clientCertificate=\(clientCertificate)") }
        return parts.joined(separator: " ")
    }
}

/// Envoy's `upstream_transport_failure_reason` for a failed TLS handshake:
/// `TLS_error:|<packed code>:<library>:<function>:<reason>:TLS_error_end`, one `|` entry per
/// BoringSSL error on the stack (Envoy's `SslSocket` failure reason), e.g.
/// `TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end`.
public enum EnvoyTLSFailure {
    /// BoringSSL's error for a refused server certificate (chain or SAN): what Envoy logs
    /// for both, as its SAN check runs inside certificate verification.
    public static let certificateVerifyFailed = "268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED"

    /// The reason text for these entries.
    public static func reason(_ entries: [String]) -> String {
        "TLS_error:" + entries.map { "|" + $0 }.joined() + ":TLS_error_end"
    }

    /// One entry from swift-nio-ssl's description of a BoringSSL error,
    /// `Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at file:line`;
    /// nil when the text is not one.
    public static func entry(fromBoringSSL text: String) -> String? {
        guard let codeStart = text.firstRange(of: "Error: ")?.upperBound else { return nil }
        let afterCode = text[codeStart...]
        guard let space = afterCode.firstIndex(of: " "), UInt32(afterCode[..<space]) != nil else { return nil }
        let code = afterCode[..<space]
        guard let errorStart = afterCode.firstRange(of: "error:")?.upperBound else { return nil }
        var rest = afterCode[errorStart...]
        if let at = rest.ranges(of: " at ").last { rest = rest[..<at.lowerBound] }
        // Drop the hex code: `1000007d:SSL routines:…` → `SSL routines:…`.
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        let named = rest[rest.index(after: colon)...]
        guard named.split(separator: ":", omittingEmptySubsequences: false).count == 3 else { return nil }
        return "\(code):\(named)"
    }
}

extension OriginTLS {
    /// True when a server certificate with these SANs carries one of `subjectAltNames`
    /// (always, when the list is empty). Envoy's exact SAN matchers: a URI or IP SAN equal
    /// to the name, or a DNS SAN equal to it ignoring case, a `*.` DNS SAN covering exactly
    /// one label (Envoy's `dnsNameMatch`).
    public func accepts(dnsNames: [String], uris: [String], ipAddresses: [String]) -> Bool {
        guard !subjectAltNames.isEmpty else { return true }
        return subjectAltNames.contains { expected in
            uris.contains(expected) || ipAddresses.contains(expected)
                || dnsNames.contains { Self.dnsNameMatches(expected: expected, certificateName: $0) }
        }
    }

    static func dnsNameMatches(expected: String, certificateName: String) -> Bool {
        let expected = expected.lowercased()
        let name = certificateName.lowercased()
        if expected == name { return true }
        guard name.hasPrefix("*."), let dot = expected.firstIndex(of: ".") else { return false }
        return expected[dot...] == name.dropFirst() && expected.distance(from: expected.startIndex, to: dot) > 0
    }
}
