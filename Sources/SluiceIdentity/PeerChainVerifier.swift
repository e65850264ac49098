public import Foundation
public import SluiceCore
public import X509

/// Why a peer's certificate was refused: the `reason` label of
/// `sluice_tls_handshake_failures_total`, and the log's words for it.
public enum PeerVerificationFailure: String, Error, Sendable, CaseIterable {
    /// The peer sent no certificate.
    case noCertificate = "no_certificate"
    /// The chain does not lead to a root in `root-cert.pem` (another mesh, self-signed…).
    case unknownCA = "unknown_ca"
    /// A certificate in the chain is past its `notAfter`.
    case expired = "expired"
    /// A certificate in the chain is before its `notBefore`.
    case notYetValid = "not_yet_valid"
    /// The leaf has no SPIFFE URI SAN, or one from another trust domain.
    case badSAN = "bad_san"
    /// The leaf's SPIFFE ID is not one the caller expected (sidecar checking its gateway).
    case sanMismatch = "san_mismatch"
    /// The peer's bytes were not a certificate.
    case malformed = "malformed"
}

/// Verifies a peer's certificate chain against the mesh roots the way a mesh peer must:
/// each certificate signed by the next (or by a root), intermediates marked CA, every one
/// within its validity at `now`, the leaf carrying a SPIFFE ID of the expected trust domain
/// (and, for a client checking its server, one of the expected IDs). Pure: the certificates
/// and the time are given. Swift rather than BoringSSL's verifier so a refusal has a reason.
public struct PeerChainVerifier: Sendable {
    /// The mesh roots (`root-cert.pem`).
    public let roots: [Certificate]
    /// The trust domain a peer's SPIFFE ID must be in.
    public let trustDomain: String
    /// If not empty, the peer's SPIFFE ID must be one of these (Istio's `subjectAltNames`).
    public let expectedIdentities: [String]

    /// Creates a verifier; `expectedIdentities` empty accepts any ID of `trustDomain`.
    public init(roots: [Certificate], trustDomain: String, expectedIdentities: [String] = []) {
        self.roots = roots
        self.trustDomain = trustDomain
        self.expectedIdentities = expectedIdentities
    }

    /// The peer's SPIFFE ID, or why not. `chain[0]` is the peer's own certificate.
    public func verify(chain: [Certificate], now: Date) -> Result<SPIFFEID, PeerVerificationFailure> {
        guard let leaf = chain.first else { return .failure(.noCertificate) }
        var index = 0
        while true {
            let certificate = chain[index]
            if now < certificate.notValidBefore { return .failure(.notYetValid) }
            if now > certificate.notValidAfter { return .failure(.expired) }
            if self.roots.contains(certificate) { break }
            if let root = self.roots.first(where: { Self.signed(certificate, by: $0) }) {
                if now > root.notValidAfter { return .failure(.expired) }
                if now < root.notValidBefore { return .failure(.notYetValid) }
                break
            }
            let next = index + 1
            guard next < chain.count, Self.isCA(chain[next]), Self.signed(certificate, by: chain[next]) else {
                return .failure(.unknownCA)
            }
            index = next
        }
        guard let identity = Self.spiffeID(of: leaf), identity.trustDomain == self.trustDomain.lowercased() else {
            return .failure(.badSAN)
        }
        if !self.expectedIdentities.isEmpty && !self.expectedIdentities.contains(identity.description) {
            return .failure(.sanMismatch)
        }
        return .success(identity)
    }

    /// The first `spiffe://` URI SAN of `certificate` that parses, else nil.
    public static func spiffeID(of certificate: Certificate) -> SPIFFEID? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for case .uniformResourceIdentifier(let uri) in names {
            if let id = try? SPIFFEID(parsing: uri) { return id }
        }
        return nil
    }

    static func signed(_ certificate: Certificate, by issuer: Certificate) -> Bool {
        certificate.issuer == issuer.subject && issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
    }

    static func isCA(_ certificate: Certificate) -> Bool {
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else { return false }
        return true
    }
}
