public import Foundation
import Crypto
public import SluiceCore
public import X509

/// A certificate and its private key, as PEM texts ready to be written to Istio's files.
public struct IssuedCertificate: Sendable {
    /// The certificate.
    public let certificate: Certificate
    /// The certificate, PEM.
    public let certificatePEM: String
    /// Its private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    public let privateKeyPEM: String
}

/// Issues a mesh root CA and workload certificates the way Istio's CA shapes them: the
/// workload's SPIFFE ID as a URI SAN, `serverAuth` and `clientAuth` usage, so the same
/// certificate serves as client (sidecar) and server (gateway). Keys are ECDSA P-256.
/// Time comes from the caller, so what is issued is reproducible in tests.
public enum MeshCertificateAuthority {
    /// A self-signed root for `trustDomain` (subject `O=<trust domain>`, as Istio's
    /// self-signed CA names its root).
    public static func makeRoot(trustDomain: String, now: Date, days: Int) throws -> IssuedCertificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName("Sluice mesh root")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-60),
            notValidAfter: now.addingTimeInterval(Double(days) * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: key
        )
        return try IssuedCertificate(certificate: certificate, certificatePEM: certificate.serializeAsPEM().pemString,
                                     privateKeyPEM: key.serializeAsPEM().pemString)
    }

    /// A workload (or gateway) certificate for `identity`, signed by `root`, with `dnsNames`
    /// as extra SANs (a gateway's Service name). Valid from a minute before `now` (clock
    /// skew) for `days` days; a negative `days` issues one already expired, for tests.
    public static func issue(
        identity: SPIFFEID,
        dnsNames: [String] = [],
        root: Certificate,
        rootKey: Certificate.PrivateKey,
        now: Date,
        days: Int
    ) throws -> IssuedCertificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.description)]
        names += dnsNames.map { .dnsName($0) }
        let usage = try ExtendedKeyUsage([.serverAuth, .clientAuth])
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            usage
            // Istio's workload certificates have an empty subject, which makes the SAN critical.
            Critical(SubjectAlternativeNames(names))
        }
        let validity: (Date, Date) =
            days >= 0
            ? (now.addingTimeInterval(-60), now.addingTimeInterval(Double(days) * 86400))
            : (now.addingTimeInterval(Double(days - 1) * 86400), now.addingTimeInterval(Double(days) * 86400))
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: validity.0,
            notValidAfter: validity.1,
            issuer: root.subject,
            subject: DistinguishedName(),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: rootKey
        )
        return try IssuedCertificate(certificate: certificate, certificatePEM: certificate.serializeAsPEM().pemString,
                                     privateKeyPEM: key.serializeAsPEM().pemString)
    }
}
