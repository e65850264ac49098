import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// HTTP/2 (h2c prior knowledge) through the sidecar and the gateway on loopback: a NIOHTTP2
/// client, Sluice, and a NIOHTTP2 origin. Each stream is decided by its `:authority`.
final class HTTP2LoopbackTests: XCTestCase {
    private func registry(port: Int, protocol name: String = "HTTP2") -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: grpc-api}
        spec:
          hosts: [api.example.test]
          ports: [{number: \(port), name: h2, protocol: \(name)}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        """
    }

    private let registryOnly = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"
    private let grpcHeaders = [("content-type", "application/grpc"), ("te", "trailers")]

    private func tempLog() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-h2-\(UUID().uuidString).log").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func logLines(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testStreamsOnOneConnectionAreDecidedEachByAuthority() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let path = tempLog()
        let writer = try AccessLogWriter(path: path, format: .json)
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin, accessLog: writer)
        let client = try net.h2Client(to: proxy)
        // Many concurrent streams, allowed and denied interleaved, on one connection.
        let futures = (0..<40).map { i in
            client.start(authority: i % 2 == 0 ? "api.example.test:\(origin.port!)" : "evil.test", path: "/n/\(i)")
        }
        for (i, future) in futures.enumerated() {
            let response = try future.wait()
            if i % 2 == 0 {
                XCTAssertEqual(response.status, 200, "stream \(i)")
                XCTAssertEqual(response.text, "authority=api.example.test:\(origin.port!) path=/n/\(i)\n")
            } else {
                XCTAssertEqual(response.status, 502, "stream \(i)")
            }
        }
        writer.shutdown()
        let lines = try logLines(path)
        XCTAssertEqual(lines.count, 40)
        XCTAssertTrue(lines.allSatisfy { $0["protocol"] as? String == "HTTP/2" })
        XCTAssertEqual(lines.filter { $0["response_code"] as? Int == 502 }.count, 20)
        XCTAssertEqual(Set(lines.compactMap { $0["upstream_host"] as? String }).count, 1, "one pooled upstream connection")
    }

    func testDeniedGRPCIsTrailersOnlyUnavailable() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!, protocol: "GRPC"), originalDestination: origin)
        let client = try net.h2Client(to: proxy)
        let denied = try client.request(authority: "evil.test", path: "/pkg.Svc/Call", method: "POST", extra: grpcHeaders, body: [0, 0, 0, 0, 0])
        XCTAssertEqual(denied.headerBlocks.count, 1, "trailers-only")
        XCTAssertEqual(denied.status, 200)
        XCTAssertEqual(denied.trailers?.first(name: "grpc-status"), "14")
        XCTAssertNotNil(denied.trailers?.first(name: "grpc-message"))
        let allowed = try client.request(
            authority: "api.example.test:\(origin.port!)", path: "/pkg.Svc/Call", method: "POST", extra: grpcHeaders, body: [0, 0, 0, 0, 1, 42]
        )
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(allowed.trailers?.first(name: "grpc-status"), "0", "trailers preserved")
        XCTAssertEqual(allowed.trailers?.first(name: "grpc-message"), "ok")
        XCTAssertEqual(Array(allowed.body.suffix(6)), [0, 0, 0, 0, 1, 42])
    }

    func testLargeBodyBothWaysIsIntact() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin)
        let client = try net.h2Client(to: proxy)
        // Larger than every window on the way (64 KiB), so flow control must move it along.
        let body = (0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let response = try client.request(authority: "api.example.test:\(origin.port!)", path: "/echo", method: "POST", body: body)
        XCTAssertEqual(response.status, 200)
        let prefix = Array("authority=api.example.test:\(origin.port!) path=/echo\n".utf8)
        XCTAssertEqual(response.body.count, prefix.count + body.count)
        XCTAssertTrue(response.body.elementsEqual(prefix + body))
    }

    /// Runs `exchange` with an h2c client through a sidecar in front of the test origin, then
    /// returns the access-log lines it wrote, by path.
    private func loggedByPath(_ exchange: (H2Client, String) throws -> Void) throws -> [String: [String: Any]] {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let path = tempLog()
        let writer = try AccessLogWriter(path: path, format: .json)
        let proxy = try net.startSidecar(config: registryOnly, registry: registry(port: origin.port!), originalDestination: origin, accessLog: writer)
        try exchange(try net.h2Client(to: proxy), "api.example.test:\(origin.port!)")
        writer.shutdown()
        let lines = try logLines(path)
        return Dictionary(lines.map { ($0["path"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
    }

    func testUpstreamResetsMapToEnvoyFlags() throws {
        let byPath = try loggedByPath { client, authority in
            let early = try client.request(authority: authority, path: "/reset-early")
            XCTAssertEqual(early.status, 503)
            XCTAssertTrue(early.text.contains("reset reason: remote reset"), early.text)
            let mid = try client.request(authority: authority, path: "/reset-mid")
            XCTAssertEqual(mid.status, 200)
            XCTAssertNotNil(mid.reset, "the client's stream is reset too")
            let clientReset = try client.start(authority: authority, path: "/slow", method: "POST", resetAfterHeaders: true).wait()
            XCTAssertNil(clientReset.status)
            // The client's stream closes as it sends RST_STREAM; a later stream on the same
            // connection is read by the proxy after it, so its answer means the reset was seen.
            let after = try client.request(authority: authority, path: "/after")
            XCTAssertEqual(after.status, 200, after.text)
        }
        XCTAssertEqual(byPath.count, 4)
        XCTAssertEqual(byPath["/reset-early"]?["response_flags"] as? String, "UR")
        XCTAssertEqual(byPath["/reset-early"]?["response_code"] as? Int, 503)
        XCTAssertEqual(byPath["/reset-mid"]?["response_flags"] as? String, "UR")
        XCTAssertEqual(byPath["/slow"]?["response_flags"] as? String, "DR")
    }

    /// The origin's connection does not validate header blocks; the client's does, as they
    /// are written to it. An invalid response head is Envoy's upstream protocol error (502
    /// `UPE`), invalid trailers reset the client's stream; the connection carries on.
    func testInvalidResponseHeaderBlocksAreUpstreamProtocolErrors() throws {
        let byPath = try loggedByPath { client, authority in
            let head = try client.request(authority: authority, path: "/bad-head")
            XCTAssertEqual(head.status, 502, head.text)
            XCTAssertNil(head.headerBlocks.first?.first(name: "connection"))
            XCTAssertTrue(head.text.contains("reset reason: protocol error"), head.text)
            let trailers = try client.request(authority: authority, path: "/bad-trailers")
            XCTAssertEqual(trailers.status, 200)
            XCTAssertEqual(trailers.reset, .protocolError, "the client's stream is reset, the invalid trailers are not passed on")
            XCTAssertEqual(trailers.headerBlocks.count, 1)
            let after = try client.request(authority: authority, path: "/after")
            XCTAssertEqual(after.status, 200, after.text)
        }
        XCTAssertEqual(byPath.count, 3)
        XCTAssertEqual(byPath["/bad-head"]?["response_flags"] as? String, "UPE")
        XCTAssertEqual(byPath["/bad-head"]?["response_code"] as? Int, 502)
        XCTAssertEqual(byPath["/bad-trailers"]?["response_flags"] as? String, "UPE")
        XCTAssertEqual(byPath["/bad-trailers"]?["response_code"] as? Int, 200)
        XCTAssertEqual(byPath["/after"]?["response_flags"] as? String, "-")
    }

    func testGatewayAnswersUnregisteredStreams404NR() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let runtime = try Loopback.runtime(config: registryOnly, registry: registry(port: origin.port!), role: .gateway)
        // The gateway decides on the port the request arrived on: its HTTP listener takes the
        // registered port on 127.0.0.2, beside the origin on 127.0.0.1.
        let listener = ListenerConfig(port: origin.port!, protocol: .http, address: "127.0.0.2")
        let channel = try net.group.next().makeFutureWithTask {
            try await GatewayListener.bind(listener, group: net.group, runtime: runtime)
        }.wait()
        net.adopt(channel)
        let client = try net.h2Client(to: channel.localAddress!)
        XCTAssertEqual(
            try net.exchange(Array("GET / HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n".utf8), with: channel.localAddress!).text
                .hasPrefix("HTTP/1.1 404"), true, "HTTP/1 still served on the same listener")
        XCTAssertEqual(try client.request(authority: "evil.test").status, 404)
        let allowed = try client.request(authority: "api.example.test:\(origin.port!)")
        XCTAssertEqual(allowed.status, 200)
    }

    func testSidecarRelaysStreamsThroughAConnectGateway() throws {
        let net = Loopback()
        let origin = try net.startHTTP2Origin()
        let gateway = try net.startGateway(config: "listeners: []\n", registry: registry(port: origin.port!))
        let sidecarConfig = """
            outboundTrafficPolicy: {mode: REGISTRY_ONLY}
            egressGateway:
              address: [127.0.0.1]
              protocol: connect
              ports: {connect: \(gateway.connect.port!)}
            """
        let sidecarRegistry = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: grpc-api}
            spec:
              hosts: [api.example.test]
              ports: [{number: \(origin.port!), name: grpc, protocol: GRPC}]
              resolution: DNS
            """
        let proxy = try net.startSidecar(config: sidecarConfig, registry: sidecarRegistry, originalDestination: origin)
        let client = try net.h2Client(to: proxy)
        let allowed = try client.request(
            authority: "api.example.test:\(origin.port!)", path: "/pkg.Svc/Call", method: "POST", extra: grpcHeaders, body: [0, 0, 0, 0, 1, 7]
        )
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(allowed.trailers?.first(name: "grpc-status"), "0", "trailers cross the tunnel")
        XCTAssertEqual(try client.request(authority: "evil.test").status, 502)
    }
}
