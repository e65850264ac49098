import Foundation
import NIOCore
import NIOHPACK
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// HTTP/2 streams to a port declared `HTTP`: a NIOHTTP2 client, Sluice, and an HTTP/1.1-only
/// origin (NIOHTTP1). Envoy's cluster protocol follows the port, so Sluice converts each
/// stream to an HTTP/1.1 exchange.
final class HTTP2ToHTTP1LoopbackTests: XCTestCase {
    private func registry(port: Int) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web}
        spec:
          hosts: [web.example.test]
          ports: [{number: \(port), name: http, protocol: HTTP}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        """
    }

    private let registryOnly = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"

    func testStreamsReachAnHTTP1OriginAndReuseItsConnection() throws {
        let net = Loopback()
        let origin = try net.startHTTPOrigin()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-h2up-\(UUID().uuidString).log").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AccessLogWriter(path: path, format: .json)
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin, accessLog: writer)
        let client = try net.h2Client(to: proxy)
        let authority = "web.example.test:\(origin.port!)"
        let first = try client.request(authority: authority, path: "/hello")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.text, "host=\(authority)\n", "the origin saw :authority as Host")
        XCTAssertEqual(first.headerBlocks.first?.first(name: "content-length"), "\(authority.count + 6)")
        // Larger than the stream window: the origin's reads are held and resumed as the client takes it.
        let big = try client.request(authority: authority, path: "/bytes/300000")
        XCTAssertEqual(big.status, 200)
        XCTAssertEqual(big.body.count, 300_000)
        XCTAssertTrue(big.body.allSatisfy { $0 == UInt8(ascii: "x") })
        XCTAssertEqual(try client.request(authority: "evil.test").status, 502)
        writer.shutdown()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines.allSatisfy { $0["protocol"] as? String == "HTTP/2" })
        let allowed = lines.filter { $0["response_code"] as? Int == 200 }
        XCTAssertEqual(allowed.count, 2)
        XCTAssertEqual(allowed.last?["bytes_sent"] as? Int, 300_000)
        XCTAssertEqual(
            Set(allowed.compactMap { $0["upstream_local_address"] as? String }).count, 1,
            "the second stream reused the pooled HTTP/1.1 connection"
        )
    }

    func testOriginClosingBeforeItsHeadIs503UC() throws {
        let net = Loopback()
        let origin = try net.startScriptedOrigin(reply: "", close: true)
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin)
        let client = try net.h2Client(to: proxy)
        let response = try client.request(authority: "web.example.test:\(origin.port!)", path: "/")
        XCTAssertEqual(response.status, 503)
        XCTAssertTrue(response.text.contains("reset reason: connection termination"), response.text)
    }
}
