import NIOCore
import SluiceCore
import XCTest

/// The heads the proxy forwards, from heads real clients and servers sent: end-to-end fields
/// as read, hop-by-hop fields out, the proxy's own fields in.
final class HTTP1RewriteTests: XCTestCase {
    private func upstream(_ wire: String, _ edits: HTTP1Rewrite.RequestEdits = .init()) throws -> String {
        var out = ByteBuffer()
        HTTP1Rewrite.writeUpstreamRequest(try parseHead(wire), edits: edits, to: &out)
        return String(buffer: out)
    }

    private func downstream(_ wire: String, _ edits: HTTP1Rewrite.ResponseEdits) throws -> String {
        var out = ByteBuffer()
        HTTP1Rewrite.writeDownstreamResponse(try parseHead(wire, .response), edits: edits, to: &out)
        return String(buffer: out)
    }

    func testCurlRequestIsForwardedAsReadWithARequestID() throws {
        XCTAssertEqual(
            try upstream(Wire.curlGET, .init(requestID: GeneratedRequestID(random: 0x1e1c_4e2b, 0))),
            "GET / HTTP/1.1\r\nHost: aliyun.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
                + "x-request-id: 2b4e1c1e-0000-4000-8000-000000000000\r\n\r\n"
        )
    }

    func testHTTP10RequestGoesUpstreamAs11AndHopByHopFieldsAreDropped() throws {
        let wire = "GET /a?b=1 HTTP/1.0\r\nHost: aliyun.com\r\nConnection: keep-alive, X-Secret\r\n"
            + "Keep-Alive: timeout=5\r\nX-Secret: 1\r\nproxy-connection: close\r\nTE: trailers\r\n"
            + "Proxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n"
        XCTAssertEqual(try upstream(wire), "GET /a?b=1 HTTP/1.1\r\nHost: aliyun.com\r\nAccept: */*\r\n\r\n")
    }

    /// Found by the `http1` fuzz target: a field that `Connection` names is hop-by-hop, but the
    /// framing fields and Host stay, or the message we forward is not the one we framed
    /// (`Connection: content-length` turned the body into a second, smuggled request).
    func testConnectionNeverDropsContentLengthTransferEncodingOrHost() throws {
        XCTAssertEqual(
            try upstream("GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Host\r\n\r\n"),
            "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        )
        XCTAssertEqual(
            try upstream("POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\n"),
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
        )
        XCTAssertEqual(
            try upstream("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: TRANSFER-ENCODING\r\n\r\n"),
            "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        XCTAssertEqual(
            try downstream("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n", .init(versionMinor: 1)),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
        )
    }

    /// Found by the `http1` fuzz target: `Connection` options match field names ignoring the case
    /// of letters only; `x^y` (0x5E) is not `x~y` (0x7E).
    func testConnectionOptionsMatchNamesCaseInsensitivelyForLettersOnly() throws {
        XCTAssertEqual(
            try upstream("GET / HTTP/1.1\r\nHost: a\r\nConnection: x^y, X-TRACE, a@\r\nx~y: kept\r\nx-trace: 1\r\na`: kept\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: a\r\nx~y: kept\r\na`: kept\r\n\r\n"
        )
    }

    func testFieldValuesKeepTheirBytesIncludingOddSpacing() throws {
        let wire = "POST /x HTTP/1.1\r\nHost: a.test\r\nX-A:  spaced \t\r\nContent-Length: 2\r\nX-B:é\r\n\r\n"
        XCTAssertEqual(
            try upstream(wire),
            "POST /x HTTP/1.1\r\nHost: a.test\r\nX-A:  spaced \t\r\nContent-Length: 2\r\nX-B:é\r\n\r\n"
        )
    }

    func testChunkedRequestKeepsTransferEncodingAndExpectIsDroppedWhenAnswered() throws {
        let wire = "PUT /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        XCTAssertEqual(
            try upstream(wire, .init(dropExpect: true)),
            "PUT /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        XCTAssertTrue(try upstream(wire).contains("Expect: 100-continue\r\n"))
    }

    func testUpgradeIsForwardedExplicitly() throws {
        let wire = "GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        XCTAssertEqual(
            try upstream(wire, .init(upgrade: "websocket")),
            "GET /ws HTTP/1.1\r\nHost: a.test\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + "Sec-WebSocket-Version: 13\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        )
    }

    func testGatewayReplacesEveryForwardedForWithTheJoinedValue() throws {
        let wire = "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a.test\r\nx-forwarded-for: 10.0.0.2\r\n\r\n"
        XCTAssertEqual(
            try upstream(wire, .init(forwardedFor: "10.0.0.1, 10.0.0.2, 192.0.2.7")),
            "GET / HTTP/1.1\r\nHost: a.test\r\nx-forwarded-for: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n\r\n"
        )
    }

    func testNginxResponseToAKeepAliveClient() throws {
        let out = try downstream(Wire.nginxResponseHead, .init(versionMinor: 1, serviceTimeMs: 3))
        XCTAssertEqual(
            out,
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 27 Nov 2025 06:00:00 GMT\r\n"
                + "Content-Type: text/html\r\nContent-Length: 615\r\nLast-Modified: Tue, 24 Oct 2023 13:46:47 GMT\r\n"
                + "ETag: \"6537cac7-267\"\r\nAccept-Ranges: bytes\r\nx-envoy-upstream-service-time: 3\r\n\r\n"
        )
    }

    func testResponseEditsForHTTP10AndClosingAndUpgrades() throws {
        let chunked = try downstream(
            String(Wire.nginxChunkedHead.dropLast(2)) + "x-envoy-upstream-service-time: 999\r\n\r\n",
            .init(versionMinor: 0, serviceTimeMs: 12_345, connection: .close, dropTransferEncoding: true)
        )
        XCTAssertEqual(
            chunked,
            "HTTP/1.0 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/json\r\n"
                + "x-envoy-upstream-service-time: 12345\r\nconnection: close\r\n\r\n"
        )
        let upgraded = try downstream(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            .init(versionMinor: 1, connection: .upgrade("websocket"))
        )
        XCTAssertEqual(
            upgraded,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                + "connection: upgrade\r\nupgrade: websocket\r\n\r\n"
        )
        XCTAssertEqual(
            try downstream("HTTP/1.1 204\r\nX-A: 1\r\n\r\n", .init(versionMinor: 0, connection: .keepAlive)),
            "HTTP/1.0 204 \r\nX-A: 1\r\nconnection: keep-alive\r\n\r\n"
        )
    }

    func testLocalResponse() {
        var out = ByteBuffer()
        HTTP1Rewrite.writeLocalResponse(
            versionMinor: 1,
            status: 502,
            reason: "Bad Gateway",
            fields: [("content-length", "3"), ("server", "sluice")],
            body: "no\n",
            includeBody: true,
            to: &out
        )
        XCTAssertEqual(String(buffer: out), "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 3\r\nserver: sluice\r\n\r\nno\n")
    }
}
