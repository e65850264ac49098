import NIOCore
import SluiceCore
import XCTest

/// HTTP/2 detection, the family of HTTP2/GRPC ports, and Envoy's local replies on a stream.
final class HTTP2CoreTests: XCTestCase {
    private let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    // MARK: detection (RFC 9113 §3.4)

    func testPrefaceIsHTTP2AndItsPrefixWaits() {
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(string: preface)), .http2)
        // The preface followed by the client's SETTINGS frame, as curl sends it in one write.
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(bytes: Array(preface.utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])), .http2)
        for n in [1, 2, 3, 4, 10, 23] {
            XCTAssertNil(ProtocolDetector.detect(ByteBuffer(bytes: Array(preface.utf8).prefix(n))), "prefix of \(n) bytes")
        }
    }

    func testHTTP1MethodsStartingWithPAreStillHTTP1() {
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(string: "POST / HTTP/1.1\r\n")), .http)
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(string: "PUT ")), .http)
        XCTAssertNil(ProtocolDetector.detect(ByteBuffer(string: "PA")))
    }

    func testAlmostAPrefaceIsOpaque() {
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(string: "PRI * HTTP/1.1\r\n")), .opaque)
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(string: "PRX")), .opaque)
        XCTAssertEqual(HTTP2Preface.match(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r")), .partial)
    }

    // MARK: HTTP2 and GRPC ports are HTTP ports (Istio's protocol selection)

    /// Istio's "Protocol Selection" page lists HTTP2 and GRPC with HTTP among the protocols
    /// routed by request (`:authority`); a registry with such ports, as a user writes it.
    private let registryYAML = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: grpc-api}
        spec:
          hosts: [api.example.test]
          ports:
          - {number: 50051, name: grpc, protocol: GRPC}
          - {number: 8080, name: h2, protocol: HTTP2}
          resolution: DNS
        """

    private func decide(_ kind: TrafficKind, port: Int) throws -> Decision {
        let loaded = RegistryLoader.parse(yaml: registryYAML, path: "/test/registry.yaml")
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        let policy = Policy(mode: .registryOnly, registry: Registry(loaded.entries), gateway: nil)
        let destination = try XCTUnwrap(IPAddress("10.0.0.7"))
        return policy.decide(ConnectionFacts(kind: kind, destination: destination, port: port))
    }

    func testHTTP2AndGRPCPortsAreHTTPFamily() {
        XCTAssertEqual(PortProtocol.http2.family, .http)
        XCTAssertEqual(PortProtocol.grpc.family, .http)
        XCTAssertTrue(PortProtocol.grpc.isHTTP)
    }

    func testStreamToAGRPCPortIsDecidedByAuthority() throws {
        for port in [50051, 8080] {
            let authority = try XCTUnwrap(Authority("api.example.test:\(port)"))
            let allowed = try decide(.http(authority), port: port)
            XCTAssertEqual(allowed.action, .forward(.resolve(host: "api.example.test", port: port)))
            XCTAssertEqual(allowed.cluster, "outbound|\(port)||api.example.test")
            let other = try XCTUnwrap(Authority("evil.test:\(port)"))
            XCTAssertEqual(try decide(.http(other), port: port).action, .deny)
        }
    }

    // MARK: local replies (Envoy's shapes)

    func testDeniedGRPCIsTrailersOnlyUnavailable() {
        let reply = HTTP2LocalReply(status: 502, body: "", grpc: true)
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.grpcStatus, 14)
        XCTAssertEqual(reply.body, "")
        XCTAssertEqual(reply.headers.first { $0.0 == "grpc-status" }?.1, "14")
        XCTAssertEqual(reply.headers.first { $0.0 == "content-type" }?.1, "application/grpc")
        XCTAssertEqual(HTTP2LocalReply(status: 404, body: "", grpc: true).grpcStatus, 12)
        XCTAssertEqual(
            HTTP2LocalReply(status: 503, body: "no healthy upstream\n", grpc: true).headers.first { $0.0 == "grpc-message" }?.1,
            "no healthy upstream"
        )
    }

    func testPlainHTTP2DenialKeepsItsStatus() {
        let reply = HTTP2LocalReply(status: 502, body: "", grpc: false)
        XCTAssertEqual(reply.status, 502)
        XCTAssertNil(reply.grpcStatus)
        XCTAssertEqual(reply.headers.first { $0.0 == "content-length" }?.1, "0")
    }

    func testGRPCContentTypes() {
        XCTAssertTrue(HTTP2LocalReply.isGRPC(contentType: "application/grpc"))
        XCTAssertTrue(HTTP2LocalReply.isGRPC(contentType: "application/grpc+proto"))
        XCTAssertFalse(HTTP2LocalReply.isGRPC(contentType: "application/grpc-web"))
        XCTAssertFalse(HTTP2LocalReply.isGRPC(contentType: nil))
    }
}
