import SluiceCore
import XCTest

/// `request.headers` as Envoy's RBAC filter sees them: lower-case names, a repeated field's
/// values joined with ",".
final class HTTP1HeadAuthorizationTests: XCTestCase {
    func testNamesAreLowerCasedAndRepeatedFieldsJoined() throws {
        let head = try parseHead(
            "GET /a HTTP/1.1\r\nHost: aliyun.com\r\nX-Team: payments\r\nx-team: billing\r\nAccept:  */* \r\n\r\n")
        XCTAssertEqual(head.lowercasedHeaders, ["host": "aliyun.com", "x-team": "payments,billing", "accept": "*/*"])
    }

    func testAHeadWithoutFieldsHasNoHeaders() throws {
        XCTAssertEqual(try parseHead("GET / HTTP/1.0\r\n\r\n").lowercasedHeaders, [:])
    }

    func testTheRBACBodyIsEnvoys() {
        // envoyproxy/envoy source/extensions/filters/http/rbac/rbac_filter.cc: "RBAC: access denied".
        XCTAssertEqual(HTTP1LocalReply.rbacDeniedBody, "RBAC: access denied")
    }
}
