import NIOCore
import SluiceCore
import XCTest

/// The head parser against what real clients and servers send, and against every rule that
/// guards the proxy from request smuggling (each refused with its reason).
final class HTTP1HeadTests: XCTestCase {
    // MARK: Real clients and servers

    func testCurlGET() throws {
        let head = try parseHead(Wire.curlGET)
        XCTAssertEqual(head.kind, .request)
        XCTAssertEqual(head.string(head.method), "GET")
        XCTAssertEqual(head.string(head.target), "/")
        XCTAssertEqual(head.versionMinor, 1)
        XCTAssertEqual(head.bytes.readableBytes, Wire.curlGET.utf8.count)
        XCTAssertEqual(head.host.map(head.string), "aliyun.com")
        XCTAssertEqual(head.userAgent.map(head.string), "curl/7.88.1")
        XCTAssertEqual(head.fields.map { head.string($0.name) }, ["Host", "User-Agent", "Accept"])
        XCTAssertEqual(head.fields.map { head.string($0.value) }, ["aliyun.com", "curl/7.88.1", "*/*"])
        XCTAssertEqual(head.fieldLines.map(head.string), ["Host: aliyun.com", "User-Agent: curl/7.88.1", "Accept: */*"])
        XCTAssertNil(head.contentLength)
        XCTAssertFalse(head.hasTransferEncoding)
        XCTAssertFalse(head.transferEncodingChunked)
        XCTAssertFalse(head.connectionClose)
        XCTAssertFalse(head.expectContinue)
        XCTAssertFalse(head.hasRequestID)
        XCTAssertNil(head.forwardedFor)
        XCTAssertNil(head.upgrade)
        XCTAssertTrue(head.isKeepAlive)
        XCTAssertEqual(head.status, 0)
        XCTAssertTrue(head.reason.isEmpty)
    }

    func testWrkGET() throws {
        let head = try parseHead(Wire.wrkGET)
        XCTAssertEqual(head.string(head.target), "/")
        XCTAssertEqual(head.host.map(head.string), "127.0.0.1:8080")
        XCTAssertEqual(head.fields.count, 1)
        XCTAssertTrue(head.isKeepAlive)
    }

    func testPythonHTTPClientPOST() throws {
        let head = try parseHead(Wire.pythonPOSTHead)
        XCTAssertTrue(head.methodIs("POST"))
        XCTAssertEqual(head.string(head.target), "/upload?x=1")
        XCTAssertEqual(head.contentLength, 11)
        XCTAssertEqual(head.firstValue("accept-encoding").map(head.string), "identity")
    }

    func testCurlExpectContinue() throws {
        let head = try parseHead(Wire.curlExpectPOSTHead)
        XCTAssertTrue(head.expectContinue)
        XCTAssertEqual(head.contentLength, 2_000_000)
        XCTAssertTrue(try parseHead("PUT / HTTP/1.1\r\nHost: a\r\nexpect:  100-CONTINUE \r\n\r\n").expectContinue)
        XCTAssertFalse(try parseHead("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continued\r\n\r\n").expectContinue)
    }

    func testNginxResponse() throws {
        let head = try parseHead(Wire.nginxResponseHead, .response)
        XCTAssertEqual(head.kind, .response)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.string(head.reason), "OK")
        XCTAssertEqual(head.versionMinor, 1)
        XCTAssertEqual(head.contentLength, 615)
        XCTAssertTrue(head.connectionKeepAlive)
        XCTAssertTrue(head.isKeepAlive)
        XCTAssertEqual(head.firstValue("etag").map(head.string), "\"6537cac7-267\"")
        XCTAssertTrue(head.method.isEmpty)
        XCTAssertTrue(head.target.isEmpty)
        XCTAssertNil(head.host)
    }

    func testWebSocketUpgradeRequest() throws {
        let head = try parseHead(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        XCTAssertTrue(head.connectionUpgrade)
        XCTAssertEqual(head.upgrade.map(head.string), "websocket")
        XCTAssertTrue(head.isKeepAlive)
    }

    // MARK: Accessors

    func testMethodIsIsExactAndCaseSensitive() throws {
        let head = try parseHead("get / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertTrue(head.methodIs("get"))
        XCTAssertFalse(head.methodIs("GET"))
        XCTAssertFalse(head.methodIs("ge"))
        XCTAssertFalse(head.methodIs("gets"))
        XCTAssertTrue(try parseHead("CONNECT aliyun.com:443 HTTP/1.1\r\nHost: aliyun.com:443\r\n\r\n").methodIs("CONNECT"))
    }

    func testEveryByteAtEveryOffsetOfAFieldValue() throws {
        // The value scan skips whole 8-byte words; this pins it to the byte-by-byte rule:
        // SP, HTAB, visible characters and obs-text are allowed, every other control byte
        // and DEL refused, surrounding whitespace not part of the value, at any alignment.
        for byte in UInt8.min...UInt8.max where byte != 0x0D && byte != 0x0A {
            let allowed = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
            for offset in 0..<19 {
                for trailer: [UInt8] in [[], [0x20], [0x09, 0x20, 0x09]] {
                    var value = [UInt8](repeating: UInt8(ascii: "v"), count: 19)
                    value[offset] = byte
                    let wire = Array("GET / HTTP/1.1\r\nHost: a\r\nX-V: ".utf8) + value + trailer + Array("\r\n\r\n".utf8)
                    guard allowed else {
                        XCTAssertThrowsError(try parseHead(wire), "byte \(byte) at \(offset)")
                        continue
                    }
                    let head = try parseHead(wire)
                    var expected = value
                    while let last = expected.last, last == 0x20 || last == 0x09 { expected.removeLast() }
                    while let first = expected.first, first == 0x20 || first == 0x09 { expected.removeFirst() }
                    let range = try XCTUnwrap(head.fields.last?.value)
                    let got = head.bytes.getBytes(at: head.bytes.readerIndex + range.lowerBound, length: range.count)
                    XCTAssertEqual(got, expected, "byte \(byte) at \(offset), trailer \(trailer)")
                }
            }
        }
    }

    func testMethodStringIsTheMethodAsRead() throws {
        for method in ["GET", "PUT", "POST", "HEAD", "PATCH", "DELETE", "OPTIONS", "CONNECT", "get", "GETS", "PURGE", "M-SEARCH", "POSTS", "CONNECTX"] {
            let head = try parseHead("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(head.methodString, method)
        }
        XCTAssertEqual(try parseHead("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").knownMethod, .connect)
        XCTAssertEqual(try parseHead("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").knownMethod, .head)
        XCTAssertEqual(try parseHead("head / HTTP/1.1\r\nHost: a\r\n\r\n").knownMethod, .other)
        XCTAssertEqual(try parseHead("HEADS / HTTP/1.1\r\nHost: a\r\n\r\n").knownMethod, .other)
    }

    func testNameEqualsAndFirstValueIgnoreCase() throws {
        let head = try parseHead("GET / HTTP/1.1\r\nHOST: a\r\nX-Thing: 1\r\nx-thing: 2\r\n\r\n")
        XCTAssertTrue(head.nameEquals(head.fields[0], "host"))
        XCTAssertFalse(head.nameEquals(head.fields[0], "hos"))
        XCTAssertFalse(head.nameEquals(head.fields[1], "host"))
        XCTAssertEqual(head.firstValue("x-thing").map(head.string), "1")
        XCTAssertNil(head.firstValue("x-other"))
        XCTAssertEqual(head.host.map(head.string), "a")
    }

    func testWriteBytesCopiesRanges() throws {
        let head = try parseHead(Wire.curlGET)
        var out = ByteBuffer()
        head.writeBytes(head.method, to: &out)
        head.writeBytes(head.fields[1].line, to: &out)
        head.writeBytes(0..<1_000_000, to: &out)  // clamped, never traps
        XCTAssertEqual(out.readString(length: 26), "GETUser-Agent: curl/7.88.1")
        XCTAssertEqual(out.readableBytes, Wire.curlGET.utf8.count)
    }

    func testRangesAreRelativeToReaderIndex() throws {
        var buffer = ByteBuffer(string: "junk" + Wire.wrkGET)
        buffer.moveReaderIndex(forwardBy: 4)
        let head = try HTTP1Head(parsing: buffer, kind: .request)
        XCTAssertEqual(head.method, 0..<3)
        XCTAssertEqual(head.string(head.method), "GET")
        XCTAssertEqual(head.host.map(head.string), "127.0.0.1:8080")
    }

    func testValueWhitespaceIsTrimmedButLineKeepsIt() throws {
        let head = try parseHead("GET / HTTP/1.1\r\nX-A:   a b \t \r\nX-B:\r\nX-C: \t\r\nX-D:x\r\n\r\n")
        XCTAssertEqual(head.fields.map { head.string($0.value) }, ["a b", "", "", "x"])
        XCTAssertEqual(head.string(head.fields[0].line), "X-A:   a b \t ")
        XCTAssertEqual(head.string(head.fields[2].line), "X-C: \t")
    }

    func testObsTextInValueAndReasonIsAccepted() throws {
        let request = try parseHead(bytes("GET / HTTP/1.1\r\nX-Name: caf") + [0xC3, 0xA9] + bytes("\r\n\r\n"))
        XCTAssertEqual(request.string(request.fields[0].value), "café")
        let response = try parseHead(bytes("HTTP/1.1 200 ") + [0x80, 0xFF, 0x09, 0x41] + bytes("\r\n\r\n"), .response)
        XCTAssertEqual(response.reason.count, 4)
    }

    // MARK: Status lines

    func testStatusLineVariants() throws {
        let bare = try parseHead("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", .response)
        XCTAssertEqual(bare.status, 200)
        XCTAssertTrue(bare.reason.isEmpty)
        let emptyReason = try parseHead("HTTP/1.0 404 \r\n\r\n", .response)
        XCTAssertEqual(emptyReason.status, 404)
        XCTAssertEqual(emptyReason.versionMinor, 0)
        XCTAssertTrue(emptyReason.reason.isEmpty)
        let spaced = try parseHead("HTTP/1.1 503 Service  Unavailable \r\n\r\n", .response)
        XCTAssertEqual(spaced.string(spaced.reason), "Service  Unavailable ")
        XCTAssertEqual(try parseHead("HTTP/1.1 999 X\r\n\r\n", .response).status, 999)
        XCTAssertEqual(try parseHead("HTTP/1.1 100 Continue\r\n\r\n", .response).status, 100)
    }

    func testMalformedStatusLines() {
        assertRefused("HTTP/1.1 099 Nope\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/1.1 20 OK\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/1.1 2000 OK\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/1.1  200 OK\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/1.1 2x0 OK\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/1.1 200 O\u{7F}K\r\n\r\n", .response, .malformed("invalid status line"))
        assertRefused("HTTP/2.0 200 OK\r\n\r\n", .response, .malformed("unsupported HTTP version"))
        assertRefused("HTTP/1.2 200 OK\r\n\r\n", .response, .malformed("unsupported HTTP version"))
        assertRefused("ICY 200 OK\r\n\r\n", .response, .malformed("unsupported HTTP version"))
        assertRefused("\r\n\r\n", .response, .malformed("unsupported HTTP version"))
    }

    // MARK: Request lines

    func testVersions() throws {
        XCTAssertEqual(try parseHead("GET / HTTP/1.0\r\n\r\n").versionMinor, 0)
        XCTAssertEqual(try parseHead("GET / HTTP/1.1\r\n\r\n").versionMinor, 1)
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/1", "HTTP/11", "HTTPS/1.1"] {
            assertRefused("GET / \(version)\r\nHost: a\r\n\r\n", .request, nil, version)
        }
        assertRefused("GET / HTTP/2.0\r\n\r\n", .request, .malformed("unsupported HTTP version"))
        assertRefused("GET / HTTP/1.10\r\n\r\n", .request, .malformed("invalid request line"))
        assertRefused("GET / HTTP/1.1 \r\n\r\n", .request, .malformed("invalid request line"))
    }

    func testMalformedRequestLines() {
        assertRefused("GET  / HTTP/1.1\r\n\r\n", .request, .malformed("invalid request target"))
        assertRefused("GET /  HTTP/1.1\r\n\r\n", .request, .malformed("unsupported HTTP version"))
        assertRefused("GET\t/ HTTP/1.1\r\n\r\n", .request, .malformed("invalid method"))
        assertRefused(" GET / HTTP/1.1\r\n\r\n", .request, .malformed("invalid method"))
        assertRefused("G(T / HTTP/1.1\r\n\r\n", .request, .malformed("invalid method"))
        assertRefused("GET /\r\n\r\n", .request, .malformed("invalid request target"))
        assertRefused("GET / \r\n\r\n", .request, .malformed("unsupported HTTP version"))
        assertRefused("GET HTTP/1.1\r\n\r\n", .request, .malformed("invalid request target"))
        assertRefused("GET /a\u{7F}b HTTP/1.1\r\n\r\n", .request, .malformed("invalid request target"))
        assertRefused(bytes("GET /caf") + [0xC3, 0xA9] + bytes(" HTTP/1.1\r\n\r\n"), .request, .malformed("invalid request target"))
        assertRefused(bytes("GET /a") + [0x00] + bytes(" HTTP/1.1\r\n\r\n"), .request, .malformed("invalid request target"))
        assertRefused("\r\nGET / HTTP/1.1\r\n\r\n", .request, .malformed("empty request line"))
        assertRefused("GET / HTTP/1.1\r\n", .request, .malformed("head not terminated by CRLF CRLF"))
    }

    // MARK: Field lines

    func testObsFoldIsRefused() {
        assertRefused("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", .request, .malformed("obs-fold"))
        assertRefused("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n", .request, .malformed("obs-fold"))
        // The smuggling classic: a folded Transfer-Encoding line.
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            .request,
            .malformed("obs-fold")
        )
        assertRefused("HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", .response, .malformed("obs-fold"))
    }

    func testWhitespaceBeforeColonIsRefused() {
        assertRefused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", .request, .malformed("whitespace before colon"))
        assertRefused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .request, .malformed("whitespace before colon"))
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            .request,
            .malformed("whitespace before colon")
        )
    }

    func testInvalidFieldNames() {
        assertRefused("GET / HTTP/1.1\r\n: empty\r\n\r\n", .request, .malformed("empty field name"))
        assertRefused("GET / HTTP/1.1\r\nX@Y: 1\r\n\r\n", .request, .malformed("invalid field name"))
        assertRefused("GET / HTTP/1.1\r\nNoColon\r\n\r\n", .request, .malformed("invalid field name"))
        assertRefused("GET / HTTP/1.1\r\nX\"Y: 1\r\n\r\n", .request, .malformed("invalid field name"))
        assertRefused(bytes("GET / HTTP/1.1\r\nX") + [0xC3, 0xA9] + bytes(": 1\r\n\r\n"), .request, .malformed("invalid field name"))
        XCTAssertNoThrow(try parseHead("GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09azAZ: ok\r\n\r\n"))
    }

    func testControlCharactersInValuesAreRefused() {
        for ctl in Array(UInt8(0x00)...0x1F).filter({ $0 != 0x09 && $0 != 0x0D }) + [0x7F] {
            assertRefused(
                bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a") + [ctl] + bytes("b\r\n\r\n"),
                .request,
                .malformed("invalid character in field value"),
                "byte \(ctl)"
            )
        }
        assertRefused(bytes("GET / HTTP/1.1\r\nHost: a") + [0x00] + bytes("\r\n\r\n"), .request, .malformed("invalid character in field value"))
        XCTAssertNoThrow(try parseHead("GET / HTTP/1.1\r\nX-Tab: a\tb\r\n\r\n"))
    }

    func testBareCRAndLFAreRefused() {
        assertRefused("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", .request, .malformed("CR without LF"))
        assertRefused("GET / HTTP/1.1\r\nX-A: a\r\r\n\r\n", .request, .malformed("CR without LF"))
        assertRefused("GET / HTTP/1.1\rX-A: a\r\n\r\n", .request, .malformed("invalid request line"))
        assertRefused("GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n", .request, .malformed("invalid character in field value"))
        assertRefused("GET / HTTP/1.1\r\nX-A: a\r\n\r\nX-B: b\r\n\r\n", .request, .malformed("empty line inside head"))
    }

    func testHostRules() throws {
        assertRefused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", .request, .malformed("duplicate Host"))
        assertRefused("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nHOST: b\r\n\r\n", .request, .malformed("duplicate Host"))
        XCTAssertNil(try parseHead("GET / HTTP/1.0\r\n\r\n").host)
        XCTAssertEqual(try parseHead("GET / HTTP/1.1\r\nHost:\r\n\r\n").host, 21..<21)
        // Responses have no Host rules.
        let response = try parseHead("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n", .response)
        XCTAssertNil(response.host)
    }

    // MARK: Content-Length

    func testContentLengthValues() throws {
        XCTAssertEqual(try parseHead("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").contentLength, 0)
        XCTAssertEqual(try parseHead("POST / HTTP/1.1\r\ncontent-length:42 \r\n\r\n").contentLength, 42)
        XCTAssertEqual(try parseHead("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n").contentLength, 7)
        XCTAssertEqual(
            try parseHead("POST / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n").contentLength,
            999_999_999_999_999_999
        )
        // Identical repeats are accepted (RFC 9112 §6.3 point 5 allows it), differing ones are not.
        XCTAssertEqual(try parseHead("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").contentLength, 5)
        assertRefused(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            .request,
            .malformed("differing Content-Length")
        )
        assertRefused(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
            .response,
            .malformed("differing Content-Length")
        )
        for bad in ["0, 46", "5,5", "+46", "-1", "4 6", "", "1e3", "0x10", "1_000", "1000000000000000000"] {
            assertRefused("POST / HTTP/1.1\r\nContent-Length: \(bad)\r\n\r\n", .request, .malformed("Content-Length"), bad)
        }
    }

    // MARK: Transfer-Encoding

    func testTransferEncodingChunkedVariants() throws {
        for value in ["chunked", "Chunked", "CHUNKED", "gzip, chunked", "gzip,chunked", "gzip ,  chunked ", ", chunked", "chunked,"] {
            let head = try parseHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n")
            XCTAssertTrue(head.hasTransferEncoding, value)
            XCTAssertTrue(head.transferEncodingChunked, value)
        }
        // Several fields form one list.
        let split = try parseHead("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertTrue(split.transferEncodingChunked)
        XCTAssertTrue(split.isKeepAlive)
    }

    func testTransferEncodingRefusals() {
        let refusals: [(String, String)] = [
            ("chunked, gzip", "Transfer-Encoding"),
            ("xchunked", "Transfer-Encoding"),
            ("chunkedx", "Transfer-Encoding"),
            ("gzip", "Transfer-Encoding"),
            ("identity", "Transfer-Encoding"),
            ("", "Transfer-Encoding"),
            ("chunked;q=1", "Transfer-Encoding"),
            ("chunked chunked", "Transfer-Encoding"),
            ("\"chunked\"", "Transfer-Encoding"),
            ("chunked, chunked", "chunked applied twice"),
        ]
        for (value, reason) in refusals {
            assertRefused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n", .request, .malformed(reason), value)
        }
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            .request,
            .malformed("chunked applied twice")
        )
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            .request,
            .malformed("Transfer-Encoding")
        )
        assertRefused(
            "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            .request,
            .malformed("Transfer-Encoding in HTTP/1.0 request")
        )
    }

    func testContentLengthWithTransferEncodingIsRefused() {
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
            .request,
            .malformed("Content-Length and Transfer-Encoding")
        )
        assertRefused(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            .request,
            .malformed("Content-Length and Transfer-Encoding")
        )
        assertRefused(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n",
            .response,
            .malformed("Content-Length and Transfer-Encoding")
        )
    }

    func testResponseTransferEncodingNotChunkedIsAccepted() throws {
        let head = try parseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .response)
        XCTAssertTrue(head.hasTransferEncoding)
        XCTAssertFalse(head.transferEncodingChunked)
        let old = try parseHead("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n", .response)
        XCTAssertTrue(old.transferEncodingChunked)
        XCTAssertFalse(old.isKeepAlive, "HTTP/1.0 with Transfer-Encoding must close (RFC 9112 §6.1)")
        assertRefused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .response, .malformed("chunked applied twice"))
    }

    // MARK: Connection

    func testConnectionAndKeepAlive() throws {
        let cases: [(version: String, connection: [String], close: Bool, keepAlive: Bool, upgrade: Bool, isKeepAlive: Bool)] = [
            ("1.1", [], false, false, false, true),
            ("1.1", ["close"], true, false, false, false),
            ("1.1", ["Close"], true, false, false, false),
            ("1.1", ["Keep-Alive"], false, true, false, true),
            ("1.1", ["Upgrade, close"], true, false, true, false),
            ("1.1", ["upgrade", "CLOSE"], true, false, true, false),
            ("1.1", ["closed"], false, false, false, true),
            ("1.1", ["te, x-close"], false, false, false, true),
            ("1.0", [], false, false, false, false),
            ("1.0", ["Keep-Alive"], false, true, false, true),
            ("1.0", ["keep-alive, close"], true, true, false, false),
            ("1.0", ["keep-alive", "close"], true, true, false, false),
            ("1.0", [" , keep-alive ,"], false, true, false, true),
            ("1.0", ["close"], true, false, false, false),
        ]
        for c in cases {
            let fields = c.connection.map { "Connection: \($0)\r\n" }.joined()
            let label = "HTTP/\(c.version) \(c.connection)"
            let head = try parseHead("GET / HTTP/\(c.version)\r\nHost: a\r\n\(fields)\r\n")
            XCTAssertEqual(head.connectionClose, c.close, label)
            XCTAssertEqual(head.connectionKeepAlive, c.keepAlive, label)
            XCTAssertEqual(head.connectionUpgrade, c.upgrade, label)
            XCTAssertEqual(head.isKeepAlive, c.isKeepAlive, label)
            let response = try parseHead("HTTP/\(c.version) 200 OK\r\n\(fields)Content-Length: 0\r\n\r\n", .response)
            XCTAssertEqual(response.isKeepAlive, c.isKeepAlive, "response " + label)
        }
    }

    func testProxyFields() throws {
        let head = try parseHead(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc\r\nX-Forwarded-For: 10.0.0.1\r\n"
                + "x-forwarded-for: 10.0.0.2\r\nUpgrade: h2c\r\nUpgrade: other\r\nUser-Agent: one\r\nUser-Agent: two\r\n\r\n"
        )
        XCTAssertTrue(head.hasRequestID)
        XCTAssertEqual(head.forwardedFor.map(head.string), "10.0.0.1")
        XCTAssertEqual(head.upgrade.map(head.string), "h2c")
        XCTAssertEqual(head.userAgent.map(head.string), "one")
    }

    // MARK: Limits

    func testTooManyFields() throws {
        let limits = HTTP1Limits(maxHeadBytes: 65_536, maxFields: 3)
        let three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        XCTAssertEqual(try HTTP1Head(parsing: ByteBuffer(string: three), kind: .request, limits: limits).fields.count, 3)
        let four = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        XCTAssertThrowsError(try HTTP1Head(parsing: ByteBuffer(string: four), kind: .request, limits: limits)) {
            XCTAssertEqual($0 as? HTTP1ParseError, .tooManyFields)
        }
        let hundredOne = "GET / HTTP/1.1\r\n" + (0...100).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        assertRefused(hundredOne, .request, .tooManyFields)
    }

    func testHeadTooLarge() throws {
        let head = Wire.curlGET
        let exact = HTTP1Limits(maxHeadBytes: head.utf8.count)
        XCTAssertNoThrow(try HTTP1Head(parsing: ByteBuffer(string: head), kind: .request, limits: exact))
        let smaller = HTTP1Limits(maxHeadBytes: head.utf8.count - 1)
        XCTAssertThrowsError(try HTTP1Head(parsing: ByteBuffer(string: head), kind: .request, limits: smaller)) {
            XCTAssertEqual($0 as? HTTP1ParseError, .headTooLarge)
        }
    }

    func testErrorDescriptions() {
        XCTAssertEqual(HTTP1ParseError.malformed("obs-fold").description, "malformed HTTP/1 message: obs-fold")
        XCTAssertEqual(HTTP1ParseError.headTooLarge.description, "head too large")
        XCTAssertEqual(HTTP1ParseError.tooManyFields.description, "too many header fields")
        XCTAssertEqual(HTTP1ParseError.truncated.description, "HTTP/1 message truncated")
    }
}

// MARK: - Shared fixtures and helpers (also used by HTTP1FramerTests)

/// Wire bytes as real clients and servers send them (captured with `nc -l` / tcpdump).
enum Wire {
    /// `curl http://aliyun.com/` (curl 7.88.1, Debian 12).
    static let curlGET = "GET / HTTP/1.1\r\nHost: aliyun.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
    /// `wrk -c1 -t1 http://127.0.0.1:8080/` (wrk 4.2): the smallest request there is.
    static let wrkGET = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    /// `http.client.HTTPConnection("example.com").request("POST", "/upload?x=1", body=b"hello world")`.
    static let pythonPOSTHead = "POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: identity\r\nContent-Length: 11\r\n\r\n"
    static let pythonPOST = pythonPOSTHead + "hello world"
    /// `request("POST", "/x", body=iter([b"hello", b" world"]), encode_chunked=True)`.
    static let pythonChunkedHead = "POST /x HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"
    static let pythonChunkedBody = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    /// `curl -T big.bin http://upload.example/` (2 MB): curl waits for 100 Continue.
    static let curlExpectPOSTHead = "PUT /big.bin HTTP/1.1\r\nHost: upload.example\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
        + "Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"
    /// nginx 1.22.1's welcome page.
    static let nginxResponseHead = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 27 Nov 2025 06:00:00 GMT\r\n"
        + "Content-Type: text/html\r\nContent-Length: 615\r\nLast-Modified: Tue, 24 Oct 2023 13:46:47 GMT\r\n"
        + "Connection: keep-alive\r\nETag: \"6537cac7-267\"\r\nAccept-Ranges: bytes\r\n\r\n"
    static let nginxResponseBody = String(repeating: "<p>Welcome to nginx!</p>\n", count: 24) + "<!-- nginx -->\n"
    /// nginx proxying a streamed upstream: chunked.
    static let nginxChunkedHead = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: application/json\r\n"
        + "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    static let nginxChunkedBody = "1f\r\n{\"status\":\"ok\",\"items\":[1,2,3]}\r\n" + "A\r\n0123456789\r\n" + "0\r\n\r\n"
    /// Chunk extensions and a trailer section (RFC 9112 §7.1 examples).
    static let extendedChunkedBody = "4;name=\"va;l\"\r\nWiki\r\n5 ; x=y\t\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
        + "0;last\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Checksum: abc\r\n\r\n"
    static let extendedChunkedPayload = "Wikipedia in\r\n\r\nchunks."
}

func bytes(_ string: String) -> [UInt8] {
    Array(string.utf8)
}

func parseHead(_ wire: String, _ kind: HTTP1MessageKind = .request) throws -> HTTP1Head {
    try HTTP1Head(parsing: ByteBuffer(string: wire), kind: kind)
}

func parseHead(_ wire: [UInt8], _ kind: HTTP1MessageKind = .request) throws -> HTTP1Head {
    try HTTP1Head(parsing: ByteBuffer(bytes: wire), kind: kind)
}

/// The head is refused with `expected` (any error when nil).
func assertRefused(
    _ wire: String,
    _ kind: HTTP1MessageKind,
    _ expected: HTTP1ParseError?,
    _ label: String = "",
    file: StaticString = #filePath,
    line: UInt = #line
) {
    assertRefused(bytes(wire), kind, expected, label, file: file, line: line)
}

func assertRefused(
    _ wire: [UInt8],
    _ kind: HTTP1MessageKind,
    _ expected: HTTP1ParseError?,
    _ label: String = "",
    file: StaticString = #filePath,
    line: UInt = #line
) {
    do throws(HTTP1ParseError) {
        let head = try HTTP1Head(parsing: ByteBuffer(bytes: wire), kind: kind)
        XCTFail("accepted \(head.string(0..<head.bytes.readableBytes).debugDescription) \(label)", file: file, line: line)
    } catch {
        if let expected {
            XCTAssertEqual(error, expected, label, file: file, line: line)
        }
    }
}
