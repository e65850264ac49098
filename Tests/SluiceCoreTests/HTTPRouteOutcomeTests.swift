import NIOCore
import XCTest

@testable import SluiceCore

/// Redirect `Location`s, fault plans and the request view, against Envoy's documented route
/// behaviour (envoyproxy.io RedirectAction: host_redirect, port_redirect, scheme_redirect,
/// path_redirect; HTTP fault filter: delay then abort, each by percentage).
final class HTTPRouteOutcomeTests: XCTestCase {
    func testRedirectReplacesOnlyWhatTheRouteNames() {
        let uri = HTTPRedirect(uri: "/v2/items")
        XCTAssertEqual(HTTPRouteOutcome.location(uri, requestScheme: "http", host: "api.test", path: "/v1/items"), "http://api.test/v2/items")
        // path_redirect keeps the request's query unless it has its own.
        XCTAssertEqual(HTTPRouteOutcome.location(uri, requestScheme: "http", host: "api.test", path: "/v1?a=b"), "http://api.test/v2/items?a=b")
        XCTAssertEqual(HTTPRouteOutcome.location(HTTPRedirect(uri: "/n?x=1"), requestScheme: "http", host: "api.test", path: "/o?a=b"),
                       "http://api.test/n?x=1")
        let authority = HTTPRedirect(authority: "new.test")
        XCTAssertEqual(HTTPRouteOutcome.location(authority, requestScheme: "http", host: "old.test:8080", path: "/p"), "http://new.test/p")
        XCTAssertEqual(HTTPRouteOutcome.location(HTTPRedirect(port: 8443), requestScheme: "http", host: "api.test:8080", path: "/"),
                       "http://api.test:8443/")
    }

    func testSchemeRedirectDropsThePortThatIsTheNewSchemesDefault() {
        let https = HTTPRedirect(scheme: "https")
        XCTAssertEqual(HTTPRouteOutcome.location(https, requestScheme: "http", host: "api.test:443", path: "/a"), "https://api.test/a")
        XCTAssertEqual(HTTPRouteOutcome.location(https, requestScheme: "http", host: "api.test:8080", path: "/a"), "https://api.test:8080/a")
        XCTAssertEqual(HTTPRouteOutcome.location(https, requestScheme: "http", host: "[2001:db8::1]", path: "/"), "https://[2001:db8::1]/")
        XCTAssertEqual(HTTPRouteOutcome.strippingPort("[2001:db8::1]:80"), "[2001:db8::1]")
    }

    func testFaultPlanFollowsEachPercentageOnItsOwnSample() {
        let fault = HTTPFault(delayDuration: .milliseconds(5), delayPercent: 50, abortStatus: 503, abortPercent: 10)
        XCTAssertEqual(HTTPRouteOutcome.plan(fault, delaySample: 49.9, abortSample: 9.9),
                       .init(delay: .milliseconds(5), abortStatus: 503))
        XCTAssertEqual(HTTPRouteOutcome.plan(fault, delaySample: 50, abortSample: 10), .init())
        XCTAssertEqual(HTTPRouteOutcome.plan(fault, delaySample: 0, abortSample: 99), .init(delay: .milliseconds(5)))
        let never = HTTPFault(abortStatus: 500, abortPercent: 0)
        XCTAssertTrue(HTTPRouteOutcome.plan(never, delaySample: 0, abortSample: 0).isEmpty, "0% never applies")
        XCTAssertEqual(HTTPRouteOutcome.plan(HTTPFault(abortStatus: 500), delaySample: 99.99, abortSample: 99.99).abortStatus, 500,
                       "100% (the default) always applies")
    }

    func testRequestViewReadsMethodOriginPathAndHeadersFromTheHead() throws {
        var bytes = ByteBuffer(string: "POST http://api.test/a/b?c=d HTTP/1.1\r\nHost: api.test\r\nX-Version: v2\r\n\r\n")
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        guard case .head(let head) = try framer.next(&bytes) else { return XCTFail("no head") }
        let view = head.requestView
        XCTAssertEqual(view.method, "POST")
        XCTAssertEqual(view.path, "/a/b?c=d")
        XCTAssertEqual(view.header("x-version"), "v2")
        XCTAssertNil(view.header("x-versio"))
        XCTAssertEqual(HTTP1Head.originPath("http://api.test"), "/")
        XCTAssertEqual(HTTP1Head.originPath("http://api.test?x"), "/?x")
        XCTAssertEqual(HTTP1Head.originPath("/p"), "/p")
    }

    func testRouteStatusesGetTheirReasonPhrases() {
        var out = ByteBuffer()
        HTTP1LocalReply.write(LocalStatus(code: 301), body: "", versionMinor: 1, close: false, isHEAD: false, date: "D",
                              extraFields: [("location", "http://a.test/")], to: &out)
        XCTAssertEqual(String(buffer: out),
                       "HTTP/1.1 301 Moved Permanently\r\nlocation: http://a.test/\r\ncontent-length: 0\r\ndate: D\r\nserver: sluice\r\n\r\n")
        XCTAssertEqual(LocalStatus(code: 418).reason, "I'm a teapot")
        XCTAssertEqual(LocalStatus(code: 504).code, 504)
    }
}
