import SluiceCore
import XCTest

/// SPIFFE ID parsing: cases from the SPIFFE-ID standard (spiffe/spiffe, standards/SPIFFE-ID.md
/// §2.1–2.2) and go-spiffe's `spiffeid` tests.
final class SPIFFEIDTests: XCTestCase {
    func testIstioWorkloadID() throws {
        let id = try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/sleep")
        XCTAssertEqual(id.trustDomain, "cluster.local")
        XCTAssertEqual(id.path, "ns/default/sa/sleep")
        XCTAssertEqual(id.namespace, "default")
        XCTAssertEqual(id.serviceAccount, "sleep")
        XCTAssertEqual(id.principal, "cluster.local/ns/default/sa/sleep")
        XCTAssertEqual(id.description, "spiffe://cluster.local/ns/default/sa/sleep")
    }

    func testBuiltFromNamespaceAndServiceAccount() throws {
        let id = SPIFFEID(namespace: "istio-system", serviceAccount: "istio-egressgateway-service-account")
        XCTAssertEqual(id.description, "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account")
        XCTAssertEqual(try SPIFFEID(parsing: id.description), id)
    }

    func testTrustDomainOnlyAndOtherPaths() throws {
        let bare = try SPIFFEID(parsing: "spiffe://example.org")
        XCTAssertEqual(bare.path, "")
        XCTAssertNil(bare.namespace)
        XCTAssertEqual(bare.principal, "example.org")
        let other = try SPIFFEID(parsing: "spiffe://example.org/workload/web_1.v-2")
        XCTAssertNil(other.namespace)
        XCTAssertNil(other.serviceAccount)
    }

    func testRejected() {
        let cases: [(String, SPIFFEID.ParseError)] = [
            ("http://cluster.local/ns/a/sa/b", .notSPIFFEScheme),
            ("SPIFFE://cluster.local/ns/a/sa/b", .notSPIFFEScheme),
            ("spiffe:///ns/a", .emptyTrustDomain),
            ("spiffe://Cluster.local/ns/a", .badTrustDomainCharacter("C")),
            ("spiffe://cluster.local:8080/ns/a", .badTrustDomainCharacter(":")),
            ("spiffe://user@cluster.local/ns/a", .badTrustDomainCharacter("@")),
            ("spiffe://cluster.local/", .trailingSlash),
            ("spiffe://cluster.local/ns/a/", .trailingSlash),
            ("spiffe://cluster.local/ns//sa/b", .emptySegment),
            ("spiffe://cluster.local/ns/./sa/b", .dotSegment),
            ("spiffe://cluster.local/ns/../sa/b", .dotSegment),
            ("spiffe://cluster.local/ns/a?x=1", .badPathCharacter("?")),
            ("spiffe://cluster.local/ns/a#frag", .badPathCharacter("#")),
            ("spiffe://cluster.local/ns/a%20b", .badPathCharacter("%")),
            ("spiffe://cluster.local/" + String(repeating: "a", count: 2100), .tooLong),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try SPIFFEID(parsing: text), text) { error in
                XCTAssertEqual(error as? SPIFFEID.ParseError, expected, text)
            }
        }
    }
}
