import NIOCore
import SluiceCore
import XCTest

/// A VirtualService route's `rewrite` and `headers` on the forwarded heads, byte for byte
/// (Istio's VirtualService reference: HTTPRewrite, Headers; Envoy's prefix_rewrite and
/// HeaderParser: removals first, then `set` replacing, then `add` appending).
final class HTTP1RouteRewriteTests: XCTestCase {
    private func upstream(_ wire: String, _ edits: HTTP1Rewrite.RequestEdits) throws -> String {
        var out = ByteBuffer()
        HTTP1Rewrite.writeUpstreamRequest(try parseHead(wire), edits: edits, to: &out)
        return String(buffer: out)
    }

    func testPrefixRewriteReplacesTheMatchedPrefixAndExactReplacesThePath() {
        XCTAssertEqual(HTTPRouteOutcome.rewrittenPath("/v1/items?x=1", rewrite: "/v2/", matchedURI: .prefix("/v1/")), "/v2/items?x=1")
        XCTAssertEqual(HTTPRouteOutcome.rewrittenPath("/old?x=1", rewrite: "/new", matchedURI: .exact("/old")), "/new?x=1")
        // No uri match: Envoy's route matches prefix "/", so the leading "/" is what is replaced.
        XCTAssertEqual(HTTPRouteOutcome.rewrittenPath("/a", rewrite: "/b/", matchedURI: nil), "/b/a")
    }

    func testRewriteAndRequestHeadersGoIntoTheForwardedHead() throws {
        var operations = HeaderOperations(
            set: [.init(name: "X-Env", value: "prod")], add: [.init(name: "x-extra", value: "1")], remove: ["X-Debug"])
        operations.addPairs.append(.init(name: "x-extra", value: "2"))
        var behaviour = HTTPRouteBehaviour()
        behaviour.rewrite = HTTPRewrite(uri: "/v2/", authority: "new.test")
        behaviour.requestHeaders = operations
        var edits = HTTP1Rewrite.RequestEdits()
        edits.route = RouteRequestEdits.forRoute(behaviour, matchedURI: .prefix("/v1/"), target: "/v1/items")
        let wire = "GET /v1/items HTTP/1.1\r\nHost: old.test\r\nx-env: dev\r\nX-Debug: yes\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        XCTAssertEqual(
            try upstream(wire, edits),
            "GET /v2/items HTTP/1.1\r\nhost: new.test\r\nAccept: */*\r\nX-Env: prod\r\nx-extra: 1\r\nx-extra: 2\r\n\r\n")
    }

    func testARouteWithoutEditsLeavesTheHeadOnThePlainPath() throws {
        XCTAssertNil(RouteRequestEdits.forRoute(HTTPRouteBehaviour(), matchedURI: .prefix("/"), target: "/"))
        let wire = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
        XCTAssertEqual(try upstream(wire, .init()), wire)
    }

    func testSetAfterRemoveOfTheSameNameStillSetsIt() {
        let edits = HeaderEdits(HeaderOperations(set: [.init(name: "a", value: "1")], remove: ["A"]))
        XCTAssertEqual(edits.dropped, ["a"])
        XCTAssertEqual(edits.appended, [.init(name: "a", value: "1")])
    }

    func testResponseHeadersAreSetAndRemoved() throws {
        var edits = HTTP1Rewrite.ResponseEdits(versionMinor: 1)
        edits.routeHeaders = HeaderEdits(HeaderOperations(set: [.init(name: "x-route", value: "r1")], remove: ["server"]))
        var out = ByteBuffer()
        HTTP1Rewrite.writeDownstreamResponse(
            try parseHead("HTTP/1.1 200 OK\r\nServer: origin\r\nContent-Length: 0\r\nX-Route: old\r\n\r\n", .response), edits: edits, to: &out)
        XCTAssertEqual(String(buffer: out), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-route: r1\r\n\r\n")
    }
}
