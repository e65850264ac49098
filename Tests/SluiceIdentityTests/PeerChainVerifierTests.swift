import Foundation
import SluiceCore
import SluiceIdentity
import X509
import XCTest

/// The mesh CA and peer verification: what a gateway accepts and refuses, and why. The
/// refusal cases are those issue 21 and Istio's mTLS docs list: no certificate, another
/// root, a wrong SAN, an expired certificate.
final class PeerChainVerifierTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func makeRoot(_ trustDomain: String = "cluster.local") throws -> (IssuedCertificate, Certificate.PrivateKey) {
        let root = try MeshCertificateAuthority.makeRoot(trustDomain: trustDomain, now: now, days: 365)
        return (root, try Certificate.PrivateKey(pemEncoded: root.privateKeyPEM))
    }

    func testIssuedWorkloadVerifiesWithItsSPIFFEID() throws {
        let (root, key) = try makeRoot()
        let id = SPIFFEID(namespace: "default", serviceAccount: "sleep")
        let leaf = try MeshCertificateAuthority.issue(
            identity: id, dnsNames: ["egress.istio-system.svc"], root: root.certificate, rootKey: key, now: now, days: 1)
        let verifier = PeerChainVerifier(roots: [root.certificate], trustDomain: "cluster.local")
        XCTAssertEqual(try verifier.verify(chain: [leaf.certificate], now: now).get(), id)
        let names = try XCTUnwrap(try leaf.certificate.extensions.subjectAlternativeNames)
        XCTAssertEqual(Array(names), [.uniformResourceIdentifier(id.description), .dnsName("egress.istio-system.svc")])
        // The root in the presented chain (as some CAs send it) is fine too.
        XCTAssertEqual(try verifier.verify(chain: [leaf.certificate, root.certificate], now: now).get(), id)
    }

    func testRefusals() throws {
        let (root, key) = try makeRoot()
        let (other, otherKey) = try makeRoot()
        let id = SPIFFEID(namespace: "default", serviceAccount: "sleep")
        let verifier = PeerChainVerifier(roots: [root.certificate], trustDomain: "cluster.local")
        func failure(_ chain: [Certificate], at time: Date? = nil, _ v: PeerChainVerifier? = nil) -> PeerVerificationFailure? {
            if case .failure(let reason) = (v ?? verifier).verify(chain: chain, now: time ?? now) { return reason }
            return nil
        }
        XCTAssertEqual(failure([]), .noCertificate)
        let foreign = try MeshCertificateAuthority.issue(identity: id, root: other.certificate, rootKey: otherKey, now: now, days: 1)
        XCTAssertEqual(failure([foreign.certificate]), .unknownCA)
        let expired = try MeshCertificateAuthority.issue(identity: id, root: root.certificate, rootKey: key, now: now, days: -1)
        XCTAssertEqual(failure([expired.certificate]), .expired)
        let fresh = try MeshCertificateAuthority.issue(identity: id, root: root.certificate, rootKey: key, now: now, days: 1)
        XCTAssertEqual(failure([fresh.certificate], at: now.addingTimeInterval(-3600)), .notYetValid)
        XCTAssertEqual(failure([fresh.certificate], at: now.addingTimeInterval(2 * 86400)), .expired)
        let otherDomain = try MeshCertificateAuthority.issue(
            identity: SPIFFEID(trustDomain: "example.org", namespace: "default", serviceAccount: "sleep"),
            root: root.certificate, rootKey: key, now: now, days: 1)
        XCTAssertEqual(failure([otherDomain.certificate]), .badSAN)
        let expecting = PeerChainVerifier(
            roots: [root.certificate], trustDomain: "cluster.local",
            expectedIdentities: ["spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"])
        XCTAssertEqual(failure([fresh.certificate], expecting), .sanMismatch)
        // A leaf used as if it were an intermediate does not make a chain.
        XCTAssertEqual(failure([foreign.certificate, fresh.certificate]), .unknownCA)
    }

    func testWorkloadCertificateChecksTheFiles() throws {
        let (root, key) = try makeRoot()
        let id = SPIFFEID(namespace: "payments", serviceAccount: "api")
        let leaf = try MeshCertificateAuthority.issue(identity: id, root: root.certificate, rootKey: key, now: now, days: 1)
        let loaded = try WorkloadCertificate(
            chainPEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM, rootPEM: root.certificatePEM, now: now)
        XCTAssertEqual(loaded.spiffeID, id)
        XCTAssertEqual(loaded.serialHex, WorkloadCertificate.hex(leaf.certificate.serialNumber))
        // A random 20-byte serial, DER-minimal: a leading zero byte is dropped, so 1 to 20 bytes.
        let bytes = Array(leaf.certificate.serialNumber.bytes)
        XCTAssertEqual(loaded.serialHex, bytes.map { String(format: "%02X", $0) }.joined())
        XCTAssertTrue((1...20).contains(bytes.count), "\(bytes.count) serial bytes")

        let another = try MeshCertificateAuthority.issue(identity: id, root: root.certificate, rootKey: key, now: now, days: 1)
        XCTAssertThrowsError(
            try WorkloadCertificate(chainPEM: leaf.certificatePEM, privateKeyPEM: another.privateKeyPEM, rootPEM: root.certificatePEM, now: now)
        ) { XCTAssertEqual($0 as? WorkloadCertificate.LoadError, .keyMismatch) }
        let (other, _) = try makeRoot()
        XCTAssertThrowsError(
            try WorkloadCertificate(chainPEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM, rootPEM: other.certificatePEM, now: now)
        ) { XCTAssertEqual($0 as? WorkloadCertificate.LoadError, .chain(.unknownCA)) }
        XCTAssertThrowsError(
            try WorkloadCertificate(chainPEM: "", privateKeyPEM: leaf.privateKeyPEM, rootPEM: root.certificatePEM, now: now)
        ) { XCTAssertEqual($0 as? WorkloadCertificate.LoadError, .noCertificate(file: "cert-chain.pem")) }
        XCTAssertThrowsError(
            try WorkloadCertificate(chainPEM: leaf.certificatePEM, privateKeyPEM: "garbage", rootPEM: root.certificatePEM, now: now)
        ) {
            guard case .unreadable(let file, _) = $0 as? WorkloadCertificate.LoadError else { return XCTFail("\($0)") }
            XCTAssertEqual(file, "key.pem")
        }
    }
}
