import Foundation
import NIOCore
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The byte-level HTTP path against origins that answer in the less common shapes: garbage,
/// chunked to an HTTP/1.0 app, close-delimited bodies, interim 1xx answers, HEAD.
final class HTTPFramingLoopbackTests: XCTestCase {
    private let allowAny = "outboundTrafficPolicy: {mode: ALLOW_ANY}\n"

    private func through(_ reply: String, close: Bool = true, request: String) throws -> String {
        let net = Loopback()
        let origin = try net.startScriptedOrigin(reply: reply, close: close)
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin)
        return try net.exchange(Array(request.utf8), with: proxy).text
    }

    func testAnswerThatIsNotHTTPIs502WithUPE() throws {
        let net = Loopback()
        let origin = try net.startScriptedOrigin(reply: "SSH-2.0-OpenSSH_9.2\r\n\r\n", close: false)
        let log = try AccessLogCapture()
        let proxy = try net.startSidecar(config: allowAny, registry: "", originalDestination: origin, accessLog: log.writer)
        let reply = try net.exchange(Array("GET / HTTP/1.1\r\nHost: odd.test\r\nConnection: close\r\n\r\n".utf8), with: proxy).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), reply)
        XCTAssertTrue(reply.contains("reset reason: protocol error"), reply)
        let text = try log.text()
        XCTAssertTrue(text.contains("\"response_flags\":\"UPE\""), text)
        XCTAssertTrue(text.contains("\"upstream_transport_failure_reason\":\"protocol_error\""), text)
    }

    func testChunkedAnswerIsDechunkedForAnHTTP10App() throws {
        let reply = try through(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            close: false,
            request: "GET / HTTP/1.0\r\nHost: old.test\r\n\r\n"
        )
        XCTAssertTrue(reply.hasPrefix("HTTP/1.0 200 OK\r\n"), reply)
        XCTAssertFalse(reply.lowercased().contains("transfer-encoding"), reply)
        XCTAssertTrue(reply.lowercased().contains("connection: close\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\nhello world"), reply)
    }

    func testChunkedAnswerPassesAsReadToAnHTTP11App() throws {
        let body = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let reply = try through(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
            close: false,
            request: "GET / HTTP/1.1\r\nHost: new.test\r\nConnection: close\r\n\r\n"
        )
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\n" + body), reply)
    }

    func testCloseDelimitedAnswerEndsWhenTheOriginCloses() throws {
        let reply = try through(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
            close: true,
            request: "GET / HTTP/1.1\r\nHost: eof.test\r\n\r\n"
        )
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK\r\n"), reply)
        XCTAssertTrue(reply.lowercased().contains("connection: close\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\nuntil the end"), reply)
    }

    func testInterimAnswersAreNotRelayedAndHEADHasNoBody() throws {
        let interim = try through(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            close: false,
            request: "GET / HTTP/1.1\r\nHost: hints.test\r\nConnection: close\r\n\r\n"
        )
        XCTAssertTrue(interim.hasPrefix("HTTP/1.1 200 OK\r\n"), interim)
        XCTAssertTrue(interim.hasSuffix("\r\n\r\nok"), interim)
        let head = try through(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            close: false,
            request: "HEAD / HTTP/1.1\r\nHost: head.test\r\nConnection: close\r\n\r\n"
        )
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"), head)
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), head)
    }
}
