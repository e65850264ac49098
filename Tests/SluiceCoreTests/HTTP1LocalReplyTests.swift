import NIOCore
import SluiceCore
import XCTest

/// The proxy's own answers, byte for byte: what an app behind the sidecar (or a client of
/// the gateway) reads for each local reply. The bodies are Envoy's router's texts.
final class HTTP1LocalReplyTests: XCTestCase {
    private let date = "Mon, 07 Dec 2026 08:00:00 GMT"

    private func reply(
        _ status: LocalStatus,
        body: String = "",
        versionMinor: Int = 1,
        close: Bool = false,
        isHEAD: Bool = false
    ) -> (text: String, bodyBytes: Int) {
        var out = ByteBuffer()
        let written = HTTP1LocalReply.write(status, body: body, versionMinor: versionMinor, close: close, isHEAD: isHEAD, date: self.date, to: &out)
        XCTAssertLessThanOrEqual(out.readableBytes, HTTP1LocalReply.capacity(body: body), "capacity() holds the reply")
        return (String(buffer: out), written)
    }

    func testTheSidecarsDenialIsAnEmpty502KeptAlive() {
        let (text, bodyBytes) = self.reply(.badGateway)
        XCTAssertEqual(text, "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\ndate: \(self.date)\r\nserver: sluice\r\n\r\n")
        XCTAssertEqual(bodyBytes, 0)
    }

    func testEveryStatusHasItsCodeAndReason() {
        let expected: [(LocalStatus, String)] = [
            (.badRequest, "400 Bad Request"), (.forbidden, "403 Forbidden"), (.notFound, "404 Not Found"),
            (.methodNotAllowed, "405 Method Not Allowed"),
            (.requestTimeout, "408 Request Timeout"), (.requestHeaderFieldsTooLarge, "431 Request Header Fields Too Large"),
            (.badGateway, "502 Bad Gateway"), (.serviceUnavailable, "503 Service Unavailable"),
            (.gatewayTimeout, "504 Gateway Timeout"),
        ]
        for (status, line) in expected {
            XCTAssertTrue(self.reply(status, close: true).text.hasPrefix("HTTP/1.1 \(line)\r\n"), line)
            XCTAssertEqual("\(status.code) \(status.reason)", line)
        }
    }

    func testAnUpstreamTimeoutHasEnvoysBodyAndClosesWhenTheRequestIsUnfinished() {
        let (text, bodyBytes) = self.reply(.gatewayTimeout, body: HTTP1LocalReply.upstreamTimeoutBody, close: true)
        XCTAssertEqual(
            text,
            "HTTP/1.1 504 Gateway Timeout\r\ncontent-length: 25\r\ncontent-type: text/plain\r\ndate: \(self.date)\r\n"
                + "server: sluice\r\nconnection: close\r\n\r\nupstream request timeout\n"
        )
        XCTAssertEqual(bodyBytes, 25)
    }

    func testAResetBeforeHeadersNamesItsReason() {
        XCTAssertEqual(
            HTTP1LocalReply.resetBody(reason: "connection termination"),
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination\n"
        )
        let body = HTTP1LocalReply.resetBody(reason: "connection failure")
        let (text, _) = self.reply(.serviceUnavailable, body: body)
        XCTAssertTrue(text.hasSuffix("\r\n\r\n" + body), text)
        XCTAssertTrue(text.contains("content-length: \(body.utf8.count)\r\n"), text)
    }

    func testAHEADGetsTheLengthButNoBody() {
        let (text, bodyBytes) = self.reply(.serviceUnavailable, body: HTTP1LocalReply.noHealthyUpstreamBody, isHEAD: true)
        XCTAssertEqual(
            text,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\ncontent-type: text/plain\r\ndate: \(self.date)\r\n"
                + "server: sluice\r\n\r\n"
        )
        XCTAssertEqual(bodyBytes, 0)
    }

    func testAnHTTP10AppIsAnsweredIn10AndToldTheConnectionStays() {
        XCTAssertEqual(
            self.reply(.notFound, versionMinor: 0).text,
            "HTTP/1.0 404 Not Found\r\ncontent-length: 0\r\ndate: \(self.date)\r\nserver: sluice\r\nconnection: keep-alive\r\n\r\n"
        )
        XCTAssertEqual(
            self.reply(.requestTimeout, versionMinor: 0, close: true).text,
            "HTTP/1.0 408 Request Timeout\r\ncontent-length: 0\r\ndate: \(self.date)\r\nserver: sluice\r\nconnection: close\r\n\r\n"
        )
    }

    func testConnectEstablishedAndContinueHaveNoBodyAndNoLength() {
        var out = ByteBuffer()
        HTTP1LocalReply.writeConnectEstablished(versionMinor: 1, date: self.date, to: &out)
        XCTAssertEqual(String(buffer: out), "HTTP/1.1 200 OK\r\ndate: \(self.date)\r\nserver: sluice\r\n\r\n")
        out.clear()
        HTTP1LocalReply.writeContinue(versionMinor: 0, to: &out)
        HTTP1LocalReply.writeContinue(versionMinor: 1, to: &out)
        XCTAssertEqual(String(buffer: out), "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n")
    }
}
