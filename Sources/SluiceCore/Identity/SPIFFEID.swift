/// A SPIFFE ID (`spiffe://trust-domain/path`), as the SPIFFE-ID standard defines it, and
/// Istio's reading of its path: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
///
/// What Envoy's RBAC calls the `principal` is this ID without the `spiffe://` scheme
/// (`cluster.local/ns/default/sa/sleep`), which is what AuthorizationPolicy names.
public struct SPIFFEID: Sendable, Hashable, CustomStringConvertible {
    /// The trust domain, lower case (`cluster.local`).
    public let trustDomain: String
    /// The path without its leading slash (`ns/default/sa/sleep`); may be empty.
    public let path: String

    /// Istio's default trust domain.
    public static let defaultTrustDomain = "cluster.local"

    /// The longest ID the standard allows, in bytes.
    static let maxLength = 2048

    /// Why a text is not a SPIFFE ID.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notSPIFFEScheme
        case emptyTrustDomain
        case badTrustDomainCharacter(Character)
        case badPathCharacter(Character)
        case emptySegment
        case dotSegment
        case trailingSlash
        case tooLong

        public var description: String {
            switch self {
            case .notSPIFFEScheme: "does not start with spiffe://"
            case .emptyTrustDomain: "the trust domain is empty"
            case .badTrustDomainCharacter(let c): "trust domain may hold only a-z 0-9 . - _, not \"\(c)\""
            case .badPathCharacter(let c): "path may hold only a-z A-Z 0-9 . - _, not \"\(c)\""
            case .emptySegment: "path has an empty segment"
            case .dotSegment: "path has a . or .. segment"
            case .trailingSlash: "path ends with /"
            case .tooLong: "longer than 2048 bytes"
            }
        }
    }

    /// Builds Istio's workload ID.
    public init(trustDomain: String = SPIFFEID.defaultTrustDomain, namespace: String, serviceAccount: String) {
        self.trustDomain = trustDomain.lowercased()
        self.path = "ns/\(namespace)/sa/\(serviceAccount)"
    }

    /// Parses `spiffe://td/path` strictly: no port, user info, query or fragment (their
    /// characters are refused), lower-case trust domain, no empty or dot segments.
    public init(parsing text: String) throws(ParseError) {
        guard text.utf8.count <= Self.maxLength else { throw .tooLong }
        let scheme = "spiffe://"
        guard text.hasPrefix(scheme) else { throw .notSPIFFEScheme }
        let rest = text.dropFirst(scheme.count)
        let domain: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            domain = rest[..<slash]
            path = rest[rest.index(after: slash)...]
            if path.isEmpty { throw .trailingSlash }
        } else {
            domain = rest
            path = ""
        }
        guard !domain.isEmpty else { throw .emptyTrustDomain }
        for c in domain where !(c.isASCII && (c.isLowercase || c.isNumber || c == "." || c == "-" || c == "_")) {
            throw .badTrustDomainCharacter(c)
        }
        if !path.isEmpty {
            if path.hasSuffix("/") { throw .trailingSlash }
            for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
                if segment.isEmpty { throw .emptySegment }
                if segment == "." || segment == ".." { throw .dotSegment }
                for c in segment where !(c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_")) {
                    throw .badPathCharacter(c)
                }
            }
        }
        self.trustDomain = String(domain)
        self.path = String(path)
    }

    /// `spiffe://td/path`.
    public var description: String { path.isEmpty ? "spiffe://\(trustDomain)" : "spiffe://\(trustDomain)/\(path)" }

    /// Envoy's and AuthorizationPolicy's principal: the ID without `spiffe://`.
    public var principal: String { path.isEmpty ? trustDomain : "\(trustDomain)/\(path)" }

    /// The namespace of an Istio workload ID (`ns/<ns>/sa/<sa>`), else nil.
    public var namespace: String? { istioParts?.namespace }

    /// The service account of an Istio workload ID, else nil.
    public var serviceAccount: String? { istioParts?.serviceAccount }

    private var istioParts: (namespace: String, serviceAccount: String)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 4, segments[0] == "ns", segments[2] == "sa" else { return nil }
        return (String(segments[1]), String(segments[3]))
    }
}
