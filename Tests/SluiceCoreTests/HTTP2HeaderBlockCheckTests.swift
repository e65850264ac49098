import SluiceCore
import XCTest

/// The one check of an inbound field block, against RFC 9113 §8.2-§8.3 and the examples of
/// §8.8 (request/response/trailers), plus the malformed cases of h2spec's `http2/8.1.2.x`
/// (summerwind/h2spec): uppercase names, connection-specific fields, pseudo-headers after
/// regular fields, missing or duplicate pseudo-headers, unknown pseudo-headers, pseudo-headers
/// in trailers.
final class HTTP2HeaderBlockCheckTests: XCTestCase {
    private func check(_ kind: HTTP2HeaderBlockCheck.Kind, _ fields: [(String, String)]) throws -> HTTP2HeaderBlockCheck {
        var check = HTTP2HeaderBlockCheck(kind: kind)
        for (name, value) in fields { try check.field(name: name, value: value) }
        try check.finish()
        return check
    }

    private func assertMalformed(_ kind: HTTP2HeaderBlockCheck.Kind, _ fields: [(String, String)], line: UInt = #line) {
        XCTAssertThrowsError(try check(kind, fields), line: line) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.code, .protocolError, line: line)
        }
    }

    /// RFC 9113 §8.8.1 (a GET) and §8.8.2 (a POST with a body).
    private let get: [(String, String)] = [
        (":method", "GET"), (":scheme", "https"), (":path", "/resource"), ("host", "example.org"), ("accept", "image/jpeg"),
    ]
    private let post: [(String, String)] = [
        (":method", "POST"), (":path", "/resource"), (":scheme", "https"), ("content-type", "image/jpeg"),
        ("host", "example.org"), ("content-length", "123"),
    ]

    func testRFCExamplesPass() throws {
        XCTAssertNil(try check(.request, get).contentLength)
        XCTAssertEqual(try check(.request, post).contentLength, 123)
        // §8.8.3: a response, then trailers.
        let response = try check(.response, [(":status", "200"), ("content-type", "image/jpeg"), ("vary", "Accept")])
        XCTAssertEqual(response.statusCode, 200)
        XCTAssertEqual(try check(.response, [(":status", "103"), ("link", "</style.css>; rel=preload")]).statusCode, 103)
        _ = try check(.trailers, [("foo", "bar"), ("grpc-status", "0")])
        // §8.5: CONNECT has :authority and neither :scheme nor :path.
        _ = try check(.request, [(":method", "CONNECT"), (":authority", "example.org:443")])
        // te: trailers is the one te allowed (gRPC sends it).
        _ = try check(.request, get + [("te", "trailers")])
    }

    func testMalformedRequestsAreProtocolErrors() {
        assertMalformed(.request, get + [("Accept-Language", "en")])  // uppercase
        for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
            assertMalformed(.request, get + [(name, "x")])
        }
        assertMalformed(.request, get + [("te", "gzip")])
        assertMalformed(.request, [("accept", "*/*")] + get)  // pseudo-header after a regular field
        assertMalformed(.request, get.filter { $0.0 != ":path" })
        assertMalformed(.request, get.filter { $0.0 != ":method" })
        assertMalformed(.request, get + [(":path", "/again")])
        assertMalformed(.request, [(":method", "GET"), (":scheme", "https"), (":path", "")])
        assertMalformed(.request, get + [(":status", "200")])
        assertMalformed(.request, [(":foo", "bar")] + get)
        assertMalformed(.request, [(":method", "CONNECT"), (":authority", "a:443"), (":path", "/")])
        assertMalformed(.request, post + [("content-length", "124")])
        assertMalformed(.request, get + [("content-length", "12a")])
        assertMalformed(.request, get + [("x-bad", "a\r\nb")])
        // Past the first eight bytes, and at the very end (the word-at-a-time scan and its tail).
        assertMalformed(.request, get + [("x-bad", "0123456789abcdef\0ghij")])
        assertMalformed(.request, get + [("x-bad", "0123456789abcdefg\n")])
        assertMalformed(.request, get + [("x-bad", "01234567\r")])
        assertMalformed(.request, get + [("x bad", "a")])
        // Pseudo-header values: no SP, control byte or DEL (`GET /a HTTP/1.1 x` as an HTTP/1.1
        // request line would be split differently by different parsers).
        assertMalformed(.request, [(":method", "GET"), (":scheme", "https"), (":path", "/a HTTP/1.1")])
        assertMalformed(.request, [(":method", "GET"), (":scheme", "https"), (":path", "/a\tb")])
        assertMalformed(.request, [(":method", "G\u{7F}T"), (":scheme", "https"), (":path", "/")])
        assertMalformed(.request, [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a b")])
        assertMalformed(.response, [(":status", "20\u{0}")])
    }

    func testMalformedResponsesAndTrailersAreProtocolErrors() {
        assertMalformed(.response, [("content-type", "text/plain")])
        assertMalformed(.response, [(":status", "20")])
        assertMalformed(.response, [(":status", "200"), (":status", "200")])
        assertMalformed(.response, [(":status", "200"), (":method", "GET")])
        assertMalformed(.trailers, [(":status", "200")])
        assertMalformed(.trailers, [("Grpc-Status", "0")])
    }

    func testTabsAndLongValuesPass() throws {
        // HTAB is allowed inside a value (RFC 9110 §5.5); so are bytes of UTF-8.
        _ = try check(.request, get + [("x-tabbed", "a\tb\tc\td\te\tf\tg\th\ti"), ("x-long", String(repeating: "é-", count: 40))])
    }

    func testRepeatedEqualContentLengthsAreOne() throws {
        XCTAssertEqual(try check(.request, post + [("content-length", "123")]).contentLength, 123)
    }
}
