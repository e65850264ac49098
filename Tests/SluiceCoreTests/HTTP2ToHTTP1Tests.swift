import SluiceCore
import XCTest

/// The HTTP/2 → HTTP/1.1 codec conversion. Fixtures are RFC 9113 §8.8's examples read
/// backwards (the HTTP/2 side given, the HTTP/1.1 side expected) and Envoy's HTTP/1 codec
/// behaviour (envoy/source/common/http/http1/codec_impl.cc: `content-length: 0` for a
/// bodiless POST, chunked when the length is unknown).
final class HTTP2ToHTTP1Tests: XCTestCase {
    func testRFC9113GetBecomesARequestLineAndHost() throws {
        // RFC 9113 §8.8.1: GET /resource, Host example.org, Accept image/jpeg.
        let request = try HTTP2ToHTTP1.request(
            headers: [
                (":method", "GET"), (":scheme", "https"), (":authority", "example.org"), (":path", "/resource"),
                ("host", "example.org"), ("accept", "image/jpeg"),
            ],
            endStream: true
        )
        XCTAssertEqual(request.head, "GET /resource HTTP/1.1\r\nhost: example.org\r\naccept: image/jpeg\r\n\r\n")
        XCTAssertFalse(request.chunked)
    }

    func testRFC9113PostWithLengthKeepsItAndIsNotChunked() throws {
        // RFC 9113 §8.8.2: POST /resource with content-type image/jpeg, content-length 123.
        let request = try HTTP2ToHTTP1.request(
            headers: [
                (":method", "POST"), (":path", "/resource"), (":scheme", "https"), (":authority", "example.org"),
                ("content-type", "image/jpeg"), ("content-length", "123"),
            ],
            endStream: false
        )
        XCTAssertEqual(
            request.head,
            "POST /resource HTTP/1.1\r\nhost: example.org\r\ncontent-type: image/jpeg\r\ncontent-length: 123\r\n\r\n"
        )
        XCTAssertFalse(request.chunked)
    }

    func testBodyOfUnknownLengthGoesChunked() throws {
        // curl --http2-prior-knowledge --data-binary @- sends no content-length when reading stdin.
        let request = try HTTP2ToHTTP1.request(
            headers: [(":method", "POST"), (":path", "/up"), (":scheme", "http"), (":authority", "origin.test:8080")],
            endStream: false
        )
        XCTAssertEqual(request.head, "POST /up HTTP/1.1\r\nhost: origin.test:8080\r\ntransfer-encoding: chunked\r\n\r\n")
        XCTAssertTrue(request.chunked)
    }

    func testBodilessPostGetsContentLengthZero() throws {
        let request = try HTTP2ToHTTP1.request(
            headers: [(":method", "POST"), (":path", "/"), (":authority", "a.test")], endStream: true
        )
        XCTAssertEqual(request.head, "POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 0\r\n\r\n")
    }

    func testConnectionSpecificFieldsAreDroppedAndCookiesJoined() throws {
        // RFC 9113 §8.2.3: a client may split cookie into several fields; HTTP/1 wants one.
        let request = try HTTP2ToHTTP1.request(
            headers: [
                (":method", "GET"), (":path", "/c"), (":authority", "a.test"),
                ("cookie", "a=1"), ("connection", "keep-alive"), ("keep-alive", "timeout=5"),
                ("upgrade", "h2c"), ("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA"), ("cookie", "b=2"), ("te", "trailers"),
            ],
            endStream: true
        )
        XCTAssertEqual(request.head, "GET /c HTTP/1.1\r\nhost: a.test\r\nte: trailers\r\ncookie: a=1; b=2\r\n\r\n")
    }

    func testMissingPseudoHeadersAreErrors() {
        XCTAssertThrowsError(try HTTP2ToHTTP1.request(headers: [(":path", "/"), (":authority", "a")], endStream: true)) {
            XCTAssertEqual($0 as? HTTP2ToHTTP1.ConversionError, .missingPseudoHeader(":method"))
        }
        XCTAssertThrowsError(try HTTP2ToHTTP1.request(headers: [(":method", "GET"), (":path", "/")], endStream: true)) {
            XCTAssertEqual($0 as? HTTP2ToHTTP1.ConversionError, .missingPseudoHeader(":authority"))
        }
    }

    func testRFC9113ResponseHeadBecomesStatusAndLowercaseFields() {
        // RFC 9113 §8.8.2's response: HTTP/1.1 200 OK, Content-Type image/jpeg, Content-Length 123.
        let headers = HTTP2ToHTTP1.responseHeaders(
            status: 200, fields: [("Content-Type", "image/jpeg"), ("Content-Length", "123")]
        )
        XCTAssertEqual(headers.map(\.0), [":status", "content-type", "content-length"])
        XCTAssertEqual(headers.map(\.1), ["200", "image/jpeg", "123"])
    }

    func testResponseConnectionFieldsAndThoseTheyNameAreDropped() {
        // Python's http.server answers HTTP/1.0-style with these; none may reach an HTTP/2 client.
        let headers = HTTP2ToHTTP1.responseHeaders(
            status: 404,
            fields: [
                ("Server", "SimpleHTTP/0.6"), ("Connection", "close, X-Hop"), ("X-Hop", "1"),
                ("Transfer-Encoding", "chunked"), ("Keep-Alive", "timeout=5"), ("Date", "Mon, 07 Dec 2026 12:00:00 GMT"),
            ]
        )
        XCTAssertEqual(headers.map(\.0), [":status", "server", "date"])
    }

    func testChunkFraming() {
        XCTAssertEqual(HTTP2ToHTTP1.chunkPrefix(size: 16384), "4000\r\n")
        XCTAssertEqual(HTTP2ToHTTP1.chunkPrefix(size: 1), "1\r\n")
        XCTAssertEqual(HTTP2ToHTTP1.lastChunk, "0\r\n\r\n")
    }
}
