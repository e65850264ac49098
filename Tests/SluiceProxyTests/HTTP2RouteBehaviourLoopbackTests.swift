import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// VirtualService route behaviours on HTTP/2 streams through the sidecar (h2c on loopback), as
/// for HTTP/1 requests (RouteBehaviourLoopbackTests): `rewrite` and `headers.request` reach the
/// origin, `headers.response` reaches the client, a redirect and a fault abort are answered by
/// the proxy, a host none of whose routes match is 404 NR, and the route timeout is 504 UT.
/// Istio's VirtualService reference: HTTPRewrite, Headers, HTTPRedirect, HTTPFaultInjection,
/// HTTPRoute.timeout.
final class HTTP2RouteBehaviourLoopbackTests: XCTestCase {
    private func registry(port: Int) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: grpc-api}
        spec:
          hosts: [api.example.test]
          ports: [{number: \(port), name: h2, protocol: HTTP2}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: api-routes}
        spec:
          hosts: [api.example.test]
          http:
          - match: [{uri: {prefix: /echo-headers/old}}]
            rewrite: {uri: /echo-headers/new, authority: rewritten.example.test}
            headers:
              request: {set: {X-Route: v1}, remove: [x-drop]}
              response: {add: {x-served-by: sluice-route}, remove: [content-type]}
            route: [{destination: {host: api.example.test}}]
          - match: [{uri: {prefix: /moved}}]
            redirect: {uri: /elsewhere, authority: other.example.test}
          - match: [{uri: {prefix: /abort}}]
            fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
            route: [{destination: {host: api.example.test}}]
          - match: [{uri: {prefix: /delay}}]
            fault: {delay: {fixedDelay: 50ms, percentage: {value: 100}}}
            route: [{destination: {host: api.example.test}}]
          - match: [{uri: {prefix: /hang}}]
            timeout: 100ms
            route: [{destination: {host: api.example.test}}]
        """
    }

    private let registryOnly = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"

    func testRouteBehavioursApplyToHTTP2Streams() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-h2-routes-\(UUID().uuidString).log").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AccessLogWriter(path: path, format: .json)
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin, accessLog: writer)
        let client = try net.h2Client(to: proxy)
        let authority = "api.example.test:\(origin.port!)"

        let rewritten = try client.request(authority: authority, path: "/echo-headers/old/x?q=1", extra: [("x-drop", "1"), ("x-keep", "2")])
        XCTAssertEqual(rewritten.status, 200)
        let lines = rewritten.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "authority=rewritten.example.test path=/echo-headers/new/x?q=1", "rewrite.uri replaces the matched prefix, rewrite.authority the :authority")
        XCTAssertTrue(lines.contains("x-route: v1"), "headers.request.set, its name lower-cased for HTTP/2: \(lines)")
        XCTAssertTrue(lines.contains("x-keep: 2"))
        XCTAssertFalse(lines.contains { $0.hasPrefix("x-drop") }, "headers.request.remove")
        let head = try XCTUnwrap(rewritten.headerBlocks.first)
        XCTAssertEqual(head.first(name: "x-served-by"), "sluice-route", "headers.response.add")
        XCTAssertNil(head.first(name: "content-type"), "headers.response.remove")

        let moved = try client.request(authority: authority, path: "/moved/page?a=b")
        XCTAssertEqual(moved.status, 301)
        XCTAssertEqual(moved.headerBlocks.first?.first(name: "location"), "http://other.example.test/elsewhere?a=b")

        let aborted = try client.request(authority: authority, path: "/abort")
        XCTAssertEqual(aborted.status, 418)
        XCTAssertEqual(aborted.text, HTTPRouteOutcome.faultAbortBody)

        let delayed = try client.request(authority: authority, path: "/delay/1")
        XCTAssertEqual(delayed.status, 200)
        XCTAssertEqual(delayed.text, "authority=\(authority) path=/delay/1\n")

        let unrouted = try client.request(authority: authority, path: "/nowhere")
        XCTAssertEqual(unrouted.status, 404, "a VirtualService host no route matches: 404 NR, not the sidecar's 502")

        let hung = try client.request(authority: authority, path: "/hang")
        XCTAssertEqual(hung.status, 504)
        XCTAssertEqual(hung.text, HTTP1LocalReply.upstreamTimeoutBody)

        writer.shutdown()
        let records = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        func record(_ prefix: String) -> [String: Any]? { records.first { ($0["path"] as? String)?.hasPrefix(prefix) == true } }
        XCTAssertEqual(record("/echo-headers")?["authority"] as? String, "rewritten.example.test", "the log's authority is the rewritten one")
        XCTAssertEqual(record("/abort")?["response_flags"] as? String, "FI")
        XCTAssertEqual(record("/delay")?["response_flags"] as? String, "DI")
        XCTAssertEqual(record("/nowhere")?["response_flags"] as? String, "NR")
        XCTAssertEqual(record("/hang")?["response_flags"] as? String, "UT")
    }
}

extension HTTP2RouteBehaviourLoopbackTests {
    /// `limits.idleTimeout` closes a client connection that has no open stream, with GOAWAY
    /// NO_ERROR first, as Envoy's HTTP connection manager `idle_timeout` does; a connection with
    /// a stream in flight is not idle.
    func testAnIdleClientConnectionGetsGOAWAYAndIsClosed() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let config = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nlimits: {idleTimeout: 300ms}\n"
        let proxy = try net.startSidecar(config: config, registry: registry(port: origin.port!), originalDestination: origin)
        let client = try net.h2Client(to: proxy)
        let authority = "api.example.test:\(origin.port!)"
        XCTAssertEqual(try client.request(authority: authority, path: "/delay/1").status, 200)
        // A stream held open past the timeout keeps the connection.
        let held = client.start(authority: authority, path: "/hang-held", holdOpen: true)
        Thread.sleep(forTimeInterval: 0.6)
        XCTAssertTrue(client.channel.isActive, "a stream is open: not idle")
        _ = held
        let idle = try net.h2Client(to: proxy)
        XCTAssertEqual(try idle.request(authority: authority, path: "/delay/2").status, 200)
        // Bounded: should the proxy never close it, the test closes it after 5 s and fails below.
        let channel = idle.channel
        channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        XCTAssertNoThrow(try channel.closeFuture.wait())
        XCTAssertEqual(idle.root.goAway, .noError, "closed by the proxy's idle timeout, with GOAWAY NO_ERROR")
    }
}
