import Crypto
import Foundation
import SluiceCore
import SluiceIdentity
import X509
import XCTest

/// What a MUTUAL Gateway server records about its client: Envoy's `%DOWNSTREAM_PEER_URI_SAN%`
/// ("the URI present in the SAN of the peer certificate", every URI SAN joined with `,` by
/// Envoy's stream-info formatter) and the SPIFFE ID AuthorizationPolicy's principals match.
final class PeerURISANTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// A self-signed client certificate with `names` as its SANs, as an operator's own CA
    /// might issue for a MUTUAL server (not necessarily a mesh workload's shape).
    func certificate(_ names: [GeneralName]) throws -> Certificate {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName { CommonName("sleep-client") }
        let extensions = try Certificate.Extensions {
            if !names.isEmpty { SubjectAlternativeNames(names) }
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(86400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions, issuerPrivateKey: key)
    }

    func testAMeshWorkloadCertificateGivesItsSPIFFEID() throws {
        let root = try MeshCertificateAuthority.makeRoot(trustDomain: "cluster.local", now: now, days: 1)
        let id = SPIFFEID(namespace: "default", serviceAccount: "sleep")
        let leaf = try MeshCertificateAuthority.issue(
            identity: id, dnsNames: ["sleep.default.svc"], root: root.certificate,
            rootKey: try Certificate.PrivateKey(pemEncoded: root.privateKeyPEM), now: now, days: 1)
        let names = PeerURISAN(of: leaf.certificate)
        XCTAssertEqual(names.text, "spiffe://cluster.local/ns/default/sa/sleep")
        XCTAssertEqual(names.spiffeID, id)
    }

    func testEveryURISANIsJoinedWithACommaAndDNSNamesAreLeftOut() throws {
        let cert = try certificate([
            .dnsName("client.test"), .uniformResourceIdentifier("https://client.example.org/app"),
            .uniformResourceIdentifier("spiffe://example.org/ns/ext/sa/client"),
        ])
        let names = PeerURISAN(of: cert)
        XCTAssertEqual(names.text, "https://client.example.org/app,spiffe://example.org/ns/ext/sa/client")
        XCTAssertEqual(names.spiffeID?.description, "spiffe://example.org/ns/ext/sa/client")
    }

    func testACertificateWithoutURISANsHasNone() throws {
        XCTAssertEqual(PeerURISAN(of: try certificate([.dnsName("client.test")])), PeerURISAN(of: try certificate([])))
        let names = PeerURISAN(of: try certificate([.dnsName("client.test")]))
        XCTAssertNil(names.text)
        XCTAssertNil(names.spiffeID)
    }
}
