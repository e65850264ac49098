import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// A route's `retries` over loopback against an origin that resets its first connections:
/// an idempotent GET is sent again, a POST whose bytes reached the origin is not, and the
/// tries stop at `attempts` (Istio's HTTPRetry; Envoy's `reset` condition).
final class RouteRetryLoopbackTests: XCTestCase {
    private func start(_ net: Loopback, resets: Int, counter: RequestCounter) throws -> SocketAddress {
        let origin = try net.startFlakyOrigin(resets: resets, counter: counter)
        let registry = ServiceEntryYAML.http("flaky", host: "flaky.test", port: origin.port!).yaml + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: flaky
              namespace: default
            spec:
              hosts:
              - flaky.test
              http:
              - retries:
                  attempts: 2
                  retryOn: reset
                route:
                - destination:
                    host: flaky.test
            """
        return try net.startSidecar(config: TestConfig.registryOnly, registry: registry, originalDestination: origin)
    }

    func testAGETResetByTheOriginIsRetried() throws {
        let net = Loopback()
        let counter = RequestCounter()
        let proxy = try start(net, resets: 1, counter: counter)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: flaky.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK"), reply)
        XCTAssertTrue(reply.hasSuffix("ok\n"), reply)
        XCTAssertEqual(counter.value, 2, "one reset, one answer")
    }

    func testAPOSTWhoseBytesWereSentIsNotRetried() throws {
        let net = Loopback()
        let counter = RequestCounter()
        let proxy = try start(net, resets: 1, counter: counter)
        let post = "POST / HTTP/1.1\r\nHost: flaky.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        let reply = try net.exchange(Array(post.utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503 Service Unavailable"), reply)
        XCTAssertEqual(counter.value, 1)
    }

    func testRetriesStopAtAttempts() throws {
        let net = Loopback()
        let counter = RequestCounter()
        let proxy = try start(net, resets: 10, counter: counter)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: flaky.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503 Service Unavailable"), reply)
        XCTAssertEqual(counter.value, 3, "the first try and 2 retries")
    }
}
