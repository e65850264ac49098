import NIOCore
import SluiceCore
import XCTest

/// What the proxy reads from a request head beyond framing: an upgrade asked for, the
/// forwarded-for chain, whether a body is announced.
final class HTTP1HeadProxyTests: XCTestCase {
    private func head(_ text: String) throws -> HTTP1Head {
        try HTTP1Head(parsing: ByteBuffer(string: text), kind: .request)
    }

    func testAWebSocketHandshakeAsksForAnUpgradeAndACONNECTNever() throws {
        // The handshake of RFC 6455 §1.2.
        let websocket = try head(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(websocket.requestedUpgrade, "websocket")
        XCTAssertNil(try head("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").requestedUpgrade, "no Connection: upgrade")
        XCTAssertNil(try head("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n").requestedUpgrade)
    }

    func testEveryForwardedForValueJoinsOneList() throws {
        let chained = try head("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.1\r\nx-forwarded-for: 198.51.100.2, 203.0.113.3\r\n\r\n")
        XCTAssertEqual(chained.allForwardedFor, "192.0.2.1, 198.51.100.2, 203.0.113.3")
        XCTAssertEqual(try head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").allForwardedFor, "")
    }

    func testABodyIsAnnouncedByLengthChunkingOrExpect() throws {
        XCTAssertFalse(try head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").announcesBody)
        XCTAssertFalse(try head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").announcesBody)
        XCTAssertTrue(try head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").announcesBody)
        XCTAssertTrue(try head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").announcesBody)
        XCTAssertTrue(try head("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n").announcesBody)
    }
}
