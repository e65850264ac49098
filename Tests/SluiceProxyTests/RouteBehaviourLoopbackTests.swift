import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// VirtualService route behaviours on the sidecar's HTTP/1 path over loopback: a decision per
/// request on one keep-alive connection (uri matches), a redirect, a fault abort and delay,
/// 404 NR for a VirtualService host no route matches, and the route timeout (504 UT).
final class RouteBehaviourLoopbackTests: XCTestCase {
    /// api.test on the origin's port, routed by a VirtualService (Istio's VirtualService
    /// reference: HTTPRedirect, HTTPFaultInjection, HTTPRoute.timeout); slow.test to an origin
    /// that never answers.
    private func registry(origin: Int, silent: Int) -> String {
        ServiceEntryYAML.http("api", host: "api.test", port: origin).yaml + "\n---\n"
            + ServiceEntryYAML.http("slow", host: "slow.test", port: silent).yaml + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: api
              namespace: default
            spec:
              hosts:
              - api.test
              http:
              - name: moved
                match:
                - uri:
                    prefix: /old
                redirect:
                  uri: /new
                  authority: new.api.test
              - name: broken
                match:
                - uri:
                    prefix: /abort
                fault:
                  abort:
                    httpStatus: 418
                    percentage:
                      value: 100
                route:
                - destination:
                    host: api.test
              - name: held
                match:
                - uri:
                    prefix: /held
                fault:
                  delay:
                    fixedDelay: 20ms
                    percentage:
                      value: 100
                route:
                - destination:
                    host: api.test
              - name: stuck
                match:
                - uri:
                    prefix: /stuck
                timeout: 100ms
                route:
                - destination:
                    host: slow.test
                    port:
                      number: \(silent)
              - name: sized
                match:
                - uri:
                    prefix: /size/
                rewrite:
                  uri: /bytes/
                route:
                - destination:
                    host: api.test
              - name: renamed
                match:
                - uri:
                    exact: /as-other
                rewrite:
                  authority: other.test
                headers:
                  response:
                    set:
                      x-route: renamed
                route:
                - destination:
                    host: api.test
              - name: plain
                match:
                - uri:
                    exact: /ok
                route:
                - destination:
                    host: api.test
            """
    }

    private func get(_ path: String, close: Bool = false) -> String {
        "GET \(path) HTTP/1.1\r\nHost: api.test\r\n\(close ? "Connection: close\r\n" : "")\r\n"
    }

    private func start(_ net: Loopback, accessLog: AccessLogWriter? = nil) throws -> SocketAddress {
        let origin = try net.startHTTPOrigin()
        let silent = try net.startSilentOrigin()
        return try net.startSidecar(
            config: TestConfig.registryOnly, registry: registry(origin: origin.port!, silent: silent.port!), originalDestination: origin,
            accessLog: accessLog)
    }

    func testEachRequestOnAKeepAliveConnectionIsRoutedByItsOwnPath() throws {
        let net = Loopback()
        let proxy = try start(net)
        let requests = get("/ok") + get("/old/x?q=1") + get("/abort") + get("/nowhere") + get("/held") + get("/ok", close: true)
        let reply = try net.exchange(Array(requests.utf8), with: proxy).text
        let statuses = reply.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
        XCTAssertEqual(statuses, ["200", "301", "418", "404", "200", "200"], reply)
        XCTAssertTrue(reply.lowercased().contains("location: http://new.api.test/new?q=1\r\n"), reply)
        XCTAssertTrue(reply.contains("fault filter abort"), reply)
        XCTAssertTrue(reply.contains("host=api.test"), reply)
    }

    func testRewritesReachTheOriginAndResponseHeadersTheApp() throws {
        let net = Loopback()
        let proxy = try start(net)
        let reply = try net.exchange(Array((get("/size/7") + get("/as-other", close: true)).utf8), with: proxy).text
        let statuses = reply.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.output.1) }
        XCTAssertEqual(statuses, ["200", "200"], reply)
        XCTAssertTrue(reply.lowercased().contains("content-length: 7\r\n"), "the origin's /bytes/7: \(reply)")
        XCTAssertTrue(reply.contains("host=other.test"), "the Host rewritten: \(reply)")
        XCTAssertTrue(reply.contains("x-route: renamed\r\n"), reply)
    }

    /// Envoy's router rewrites `:authority` in the request headers the access log reads, so
    /// %REQ(:AUTHORITY)% logs the rewritten host (envoyproxy/envoy#13834, #15169); a request
    /// its route does not rewrite keeps the app's.
    func testTheAccessLogShowsTheRewrittenAuthority() throws {
        let net = Loopback()
        let log = try AccessLogCapture()
        let proxy = try start(net, accessLog: log.writer)
        let reply = try net.exchange(Array((get("/as-other") + get("/ok", close: true)).utf8), with: proxy).text
        XCTAssertTrue(reply.contains("host=other.test"), reply)
        let records = try log.records()
        XCTAssertEqual(records.count, 2, "\(records)")
        let byPath = Dictionary(records.map { ($0["path"] as? String ?? "-", $0) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(byPath["/as-other"]?["authority"] as? String, "other.test", "\(records)")
        XCTAssertEqual(byPath["/ok"]?["authority"] as? String, "api.test", "\(records)")
    }

    func testTheRouteTimeoutAnswers504UT() throws {
        let net = Loopback()
        let proxy = try start(net)
        let reply = try net.exchange(Array(get("/stuck", close: true).utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 504 Gateway Timeout"), reply)
        XCTAssertTrue(reply.contains("upstream request timeout"), reply)
    }
}
