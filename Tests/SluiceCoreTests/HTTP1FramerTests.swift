import NIOCore
import SluiceCore
import XCTest

/// The framer fed real traffic whole, one byte at a time and split at every byte: the heads and
/// bodies it hands back must put the input back together exactly, and it must never read past
/// the message it is framing.
final class HTTP1FramerTests: XCTestCase {
    // MARK: Requests

    func testCurlGETWholeAndByteByByte() throws {
        for step in [Int.max, 1] {
            let result = try frame(bytes(Wire.curlGET), .request, step: step)
            XCTAssertEqual(result.messages.count, 1)
            XCTAssertEqual(result.messages.first?.head.host.map { result.messages[0].head.string($0) }, "aliyun.com")
            XCTAssertEqual(result.messages.first?.body, [])
            XCTAssertEqual(result.messages.first?.ended, true)
            XCTAssertEqual(result.leftover, 0)
            XCTAssertEqual(result.bodyFraming, HTTP1Framer.BodyFraming.none)
        }
    }

    func testWrkPipelinedRequests() throws {
        let wire = bytes(Wire.wrkGET + Wire.wrkGET + Wire.wrkGET)
        for step in [Int.max, 1, 7, 40] {
            let result = try frame(wire, .request, step: step)
            XCTAssertEqual(result.messages.count, 3, "step \(step)")
            XCTAssertTrue(result.messages.allSatisfy { $0.ended && $0.body.isEmpty })
            XCTAssertEqual(reassemble(result.messages), wire)
        }
    }

    func testFramerStopsAtTheEndOfEachPipelinedMessage() throws {
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer(string: Wire.pythonPOST + Wire.curlGET)
        guard case .head(let post) = try framer.next(&buffer) else { return XCTFail("expected head") }
        XCTAssertTrue(post.methodIs("POST"))
        XCTAssertEqual(framer.bodyFraming, .contentLength(11))
        guard case .body(let body) = try framer.next(&buffer) else { return XCTFail("expected body") }
        XCTAssertEqual(String(buffer: body), "hello world")
        guard case .end = try framer.next(&buffer) else { return XCTFail("expected end") }
        XCTAssertEqual(String(buffer: buffer), Wire.curlGET, "the next request is untouched")
        guard case .head(let get) = try framer.next(&buffer) else { return XCTFail("expected head") }
        XCTAssertTrue(get.methodIs("GET"))
        guard case .end = try framer.next(&buffer) else { return XCTFail("expected end") }
        guard case .needMore = try framer.next(&buffer) else { return XCTFail("expected needMore") }
        XCTAssertEqual(buffer.readableBytes, 0)
        XCTAssertTrue(framer.inputClosed())
    }

    func testPOSTWithContentLengthSplitAcrossBuffers() throws {
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer()
        let pieces = [Wire.pythonPOSTHead + "hel", "lo wo", "rld"].map { bytes($0)[...] }
        let messages = try drive(&framer, &buffer, pieces)
        XCTAssertEqual(messages.count, 1)
        XCTAssertEqual(messages.first?.body, bytes("hello world"))
        XCTAssertEqual(messages.first?.bodyEvents, 3)
        XCTAssertEqual(messages.first?.ended, true)
    }

    func testContentLengthZeroHasNoBody() throws {
        let result = try frame(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + Wire.wrkGET), .request)
        XCTAssertEqual(result.messages.count, 2)
        XCTAssertTrue(result.messages.allSatisfy { $0.ended && $0.body.isEmpty })
    }

    func testChunkedRequestOneByteAtATime() throws {
        let wire = bytes(Wire.pythonChunkedHead + Wire.pythonChunkedBody)
        let result = try frame(wire, .request, step: 1)
        XCTAssertEqual(result.messages.count, 1)
        XCTAssertEqual(result.messages.first?.body, bytes(Wire.pythonChunkedBody))
        XCTAssertEqual(result.messages.first?.ended, true)
        XCTAssertEqual(result.leftover, 0)
    }

    func testChunkedBodyIsCoalescedIntoOneSlice() throws {
        for (kind, head, body) in [
            (HTTP1MessageKind.request, Wire.pythonChunkedHead, Wire.pythonChunkedBody),
            (.response, Wire.nginxChunkedHead, Wire.nginxChunkedBody),
            (.request, Wire.pythonChunkedHead, Wire.extendedChunkedBody),
        ] {
            let next = kind == .request ? Wire.wrkGET : "HTTP/1.1 204 No Content\r\n\r\n"
            let result = try frame(bytes(head + body + next), kind)
            XCTAssertEqual(result.messages.count, 2)
            XCTAssertEqual(result.messages.first?.bodyEvents, 1)
            XCTAssertEqual(result.messages.first?.body, bytes(body))
            XCTAssertEqual(result.messages.first?.ended, true)
        }
        // Everything buffered so far goes out at once, even mid size line; the rest follows.
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer()
        let messages = try drive(&framer, &buffer, [bytes(Wire.pythonChunkedHead + "5\r\nhello\r\n")[...], bytes("6\r")[...], bytes("\n world\r\n0\r\n\r\n")[...]])
        XCTAssertEqual(messages.first?.bodyEvents, 3)
        XCTAssertEqual(messages.first?.body, bytes(Wire.pythonChunkedBody))
    }

    func testChunkExtensionsAndTrailers() throws {
        let wire = bytes(Wire.pythonChunkedHead + Wire.extendedChunkedBody)
        for step in [Int.max, 1, 2, 5] {
            let result = try frame(wire, .request, step: step)
            XCTAssertEqual(result.messages.first?.body, bytes(Wire.extendedChunkedBody), "step \(step)")
            XCTAssertEqual(result.messages.first?.ended, true)
            let stripped = try frame(wire, .request, step: step, strip: true)
            XCTAssertEqual(stripped.messages.first?.body, bytes(Wire.extendedChunkedPayload), "step \(step)")
            XCTAssertEqual(stripped.messages.first?.ended, true)
        }
    }

    func testEveryTwoPieceSplitReassemblesTheInput() throws {
        let cases: [(HTTP1MessageKind, String, [String])] = [
            (.request, Wire.curlGET + Wire.pythonPOST + Wire.wrkGET, ["", "hello world", ""]),
            (.request, Wire.pythonChunkedHead + Wire.pythonChunkedBody + Wire.curlGET, [Wire.pythonChunkedBody, ""]),
            (.request, Wire.pythonChunkedHead + Wire.extendedChunkedBody, [Wire.extendedChunkedBody]),
            (.response, Wire.nginxResponseHead + Wire.nginxResponseBody + Wire.nginxChunkedHead + Wire.nginxChunkedBody,
             [Wire.nginxResponseBody, Wire.nginxChunkedBody]),
            (.response, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", ["", "hello"]),
        ]
        for (kind, text, bodies) in cases {
            let wire = bytes(text)
            XCTAssertEqual(bytes(Wire.nginxResponseBody).count, 615)
            for cut in 0...wire.count {
                var framer = HTTP1Framer(kind: kind, limits: HTTP1Limits())
                var buffer = ByteBuffer()
                let messages = try drive(&framer, &buffer, [wire[..<cut], wire[cut...]])
                XCTAssertEqual(messages.map { String(decoding: $0.body, as: UTF8.self) }, bodies, "cut \(cut)")
                XCTAssertTrue(messages.allSatisfy(\.ended), "cut \(cut)")
                XCTAssertEqual(reassemble(messages), wire, "cut \(cut)")
                XCTAssertEqual(buffer.readableBytes, 0)
            }
        }
    }

    func testLargeHeadArrivingOneByteAtATimeIsScannedOnce() throws {
        // 16 KiB of cookies, fed byte by byte: a rescan per byte would be ~128M comparisons.
        let cookie = String(repeating: "k=v; ", count: 3_200)
        let wire = bytes("GET / HTTP/1.1\r\nHost: a\r\nCookie: \(cookie)\r\n\r\n")
        let result = try frame(wire, .request, step: 1)
        XCTAssertEqual(result.messages.count, 1)
        XCTAssertEqual(result.messages.first?.head.fields.count, 2)
    }

    func testCONNECTHasNoBodyAndLeavesTheTunnelBytes() throws {
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]
        var buffer = ByteBuffer(bytes: bytes("CONNECT aliyun.com:443 HTTP/1.1\r\nHost: aliyun.com:443\r\nContent-Length: 4\r\n\r\n") + clientHello)
        guard case .head(let head) = try framer.next(&buffer) else { return XCTFail("expected head") }
        XCTAssertTrue(head.methodIs("CONNECT"))
        guard case .end = try framer.next(&buffer) else { return XCTFail("expected end") }
        XCTAssertEqual(Array(buffer.readableBytesView), clientHello)
    }

    // MARK: Responses

    func testResponseToHEADHasNoBody() throws {
        var framer = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        let next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        var buffer = ByteBuffer(string: Wire.nginxResponseHead + next)
        framer.expectResponse(toHEAD: true)
        guard case .head(let head) = try framer.next(&buffer) else { return XCTFail("expected head") }
        XCTAssertEqual(head.contentLength, 615)
        XCTAssertEqual(framer.bodyFraming, HTTP1Framer.BodyFraming.none)
        guard case .end = try framer.next(&buffer) else { return XCTFail("expected end") }
        XCTAssertEqual(String(buffer: buffer), next)
        framer.expectResponse(toHEAD: false)
        let messages = try drive(&framer, &buffer, [])
        XCTAssertEqual(messages.first?.body, bytes("hi"))
    }

    func testNoBodyStatuses() throws {
        let wire = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
            + "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n"
            + "HTTP/1.1 102 Processing\r\n\r\n"
            + "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        let result = try frame(bytes(wire), .response)
        XCTAssertEqual(result.messages.map(\.head.status), [204, 304, 102, 103, 200])
        XCTAssertTrue(result.messages.allSatisfy { $0.ended && $0.body.isEmpty })
        XCTAssertEqual(result.leftover, 0)
    }

    func test100ContinueThenFinalResponse() throws {
        let wire = bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello")
        for step in [Int.max, 1] {
            let result = try frame(wire, .response, step: step)
            XCTAssertEqual(result.messages.map(\.head.status), [100, 201])
            XCTAssertEqual(result.messages.map(\.body), [[], bytes("hello")])
        }
    }

    func testInterimResponsesKeepTheHEADExpectation() throws {
        let wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        let result = try frame(bytes(wire), .response) { $0.expectResponse(toHEAD: true) }
        XCTAssertEqual(result.messages.map(\.head.status), [100, 103, 200, 200])
        XCTAssertEqual(result.messages.map(\.body), [[], [], [], bytes("hi")], "the HEAD flag ends with the final response")
    }

    func testResponseToCONNECT() throws {
        var framer = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        framer.expectResponse(toHEAD: false, toCONNECT: true)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n\u{16}\u{03}\u{03}")
        guard case .head = try framer.next(&buffer) else { return XCTFail("expected head") }
        guard case .end = try framer.next(&buffer) else { return XCTFail("expected end") }
        XCTAssertEqual(buffer.readableBytes, 3)
        // A refusal to CONNECT has a body as usual.
        let refusal = try frame(bytes("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!"), .response) {
            $0.expectResponse(toHEAD: false, toCONNECT: true)
        }
        XCTAssertEqual(refusal.messages.first?.body, bytes("no!"))
    }

    func testCloseDelimitedResponse() throws {
        var framer = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        var buffer = ByteBuffer()
        let head = "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-type: text/plain\r\n\r\n"
        let messages = try drive(&framer, &buffer, [bytes(head + "par")[...], bytes("t one, ")[...], bytes("part two")[...]])
        XCTAssertTrue(framer.isCloseDelimited)
        XCTAssertEqual(framer.bodyFraming, .closeDelimited)
        XCTAssertEqual(messages.first?.body, bytes("part one, part two"))
        XCTAssertEqual(messages.first?.ended, false)
        XCTAssertTrue(framer.inputClosed())
        XCTAssertFalse(framer.isCloseDelimited)
    }

    func testResponseTransferEncodingNotChunkedIsCloseDelimited() throws {
        var framer = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        var buffer = ByteBuffer(bytes: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") + [0x1F, 0x8B])
        _ = try framer.next(&buffer)
        XCTAssertTrue(framer.isCloseDelimited)
        guard case .body(let body) = try framer.next(&buffer) else { return XCTFail("expected body") }
        XCTAssertEqual(body.readableBytes, 2)
        XCTAssertTrue(framer.inputClosed())
    }

    func testHTTP10ChunkedResponseIsFramedAsChunked() throws {
        let result = try frame(bytes("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Wire.pythonChunkedBody), .response)
        XCTAssertEqual(result.messages.first?.body, bytes(Wire.pythonChunkedBody))
        XCTAssertEqual(result.messages.first?.ended, true)
        XCTAssertEqual(result.messages.first?.head.isKeepAlive, false)
    }

    func testStripChunkFramingYieldsThePayload() throws {
        let wire = bytes(Wire.nginxChunkedHead + Wire.nginxChunkedBody + "HTTP/1.1 204 No Content\r\n\r\n")
        for step in [Int.max, 1, 3, 33] {
            let result = try frame(wire, .response, step: step, strip: true)
            XCTAssertEqual(result.messages.count, 2)
            XCTAssertEqual(result.messages.first?.body, bytes("{\"status\":\"ok\",\"items\":[1,2,3]}0123456789"), "step \(step)")
            XCTAssertTrue(result.messages.allSatisfy(\.ended))
        }
    }

    // MARK: Input closed

    func testInputClosed() throws {
        var idle = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        XCTAssertTrue(idle.inputClosed(), "nothing started")

        var afterMessage = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer()
        _ = try drive(&afterMessage, &buffer, [bytes(Wire.curlGET)[...]])
        XCTAssertTrue(afterMessage.inputClosed(), "between messages")

        var midHead = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        buffer = ByteBuffer()
        _ = try drive(&midHead, &buffer, [bytes("GET / HTTP/1.1\r\nHo")[...]])
        XCTAssertFalse(midHead.inputClosed(), "head cut short")

        var midBody = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        buffer = ByteBuffer()
        let messages = try drive(&midBody, &buffer, [bytes(Wire.pythonPOSTHead + "hello")[...]])
        XCTAssertEqual(messages.first?.ended, false)
        XCTAssertFalse(midBody.inputClosed(), "Content-Length body cut short")

        var midChunked = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        buffer = ByteBuffer()
        _ = try drive(&midChunked, &buffer, [bytes(Wire.nginxChunkedHead + "1f\r\n{\"status\"")[...]])
        XCTAssertFalse(midChunked.isCloseDelimited)
        XCTAssertFalse(midChunked.inputClosed(), "chunked body cut short")

        var noTrailerEnd = HTTP1Framer(kind: .response, limits: HTTP1Limits())
        buffer = ByteBuffer()
        _ = try drive(&noTrailerEnd, &buffer, [bytes(Wire.nginxChunkedHead + "0\r\n")[...]])
        XCTAssertFalse(noTrailerEnd.inputClosed(), "last chunk without the final CRLF")
    }

    // MARK: Head rules through the framer

    func testBareLFIsRefusedAsSoonAsItArrives() {
        for wire in ["GET / HTTP/1.1\nHost: a", "\n", "GET / HTTP/1.1\r\nHost: a\r\n\n", "GET / HTTP/1.1\r\nHost: a\n\r\n"] {
            var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
            var buffer = ByteBuffer()
            var error: HTTP1ParseError?
            for byte in bytes(wire) where error == nil {
                buffer.writeInteger(byte)
                do throws(HTTP1ParseError) {
                    _ = try framer.next(&buffer)
                } catch let caught {
                    error = caught
                    XCTAssertEqual(byte, 0x0A, wire.debugDescription)
                }
            }
            XCTAssertEqual(error, .malformed("bare LF"), wire.debugDescription)
        }
        XCTAssertEqual(frameError(bytes("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), .response), .malformed("bare LF"))
    }

    func testSmugglingPayloadsAreRefused() {
        let cases: [(String, HTTP1ParseError)] = [
            // CL.TE
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", .malformed("Content-Length and Transfer-Encoding")),
            // TE.TE with an obfuscated coding
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", .malformed("Transfer-Encoding")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: cow\r\n\r\n", .malformed("Transfer-Encoding")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", .malformed("obs-fold")),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", .malformed("whitespace before colon")),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 46\r\n\r\n", .malformed("Content-Length")),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 46\r\n\r\n", .malformed("differing Content-Length")),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .malformed("duplicate Host")),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .malformed("unsupported HTTP version")),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .malformed("invalid character in field value")),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", .malformed("CR without LF")),
        ]
        for (wire, expected) in cases {
            XCTAssertEqual(frameError(bytes(wire), .request), expected, wire.debugDescription)
            XCTAssertEqual(frameError(bytes(wire), .request, step: 1), expected, wire.debugDescription)
        }
    }

    func testLeadingEmptyLinesBeforeARequest() throws {
        let one = try frame(bytes("\r\n" + Wire.wrkGET), .request, step: 1)
        XCTAssertEqual(one.messages.count, 1)
        XCTAssertEqual(one.messages.first.map { Array($0.head.bytes.readableBytesView) }, bytes(Wire.wrkGET))
        // After a POST body, as old browsers did.
        let afterBody = try frame(bytes(Wire.pythonPOST + "\r\n" + Wire.wrkGET), .request)
        XCTAssertEqual(afterBody.messages.count, 2)
        let four = try frame(bytes("\r\n\r\n\r\n\r\n" + Wire.wrkGET), .request)
        XCTAssertEqual(four.messages.count, 1)
        XCTAssertEqual(frameError(bytes("\r\n\r\n\r\n\r\n\r\n" + Wire.wrkGET), .request), .malformed("empty lines before request line"))
        XCTAssertEqual(frameError(bytes("\r\n\r\n\r\n\r\n\r\n" + Wire.wrkGET), .request, step: 1), .malformed("empty lines before request line"))
        XCTAssertEqual(frameError(bytes("\rGET / HTTP/1.1\r\n\r\n"), .request), .malformed("CR without LF"))
        XCTAssertEqual(frameError(bytes("\r\nHTTP/1.1 200 OK\r\n\r\n"), .response), .malformed("unsupported HTTP version"))
        // A lone CR waits for its LF, and counts as something buffered.
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer(string: "\r")
        guard case .needMore = try framer.next(&buffer) else { return XCTFail("expected needMore") }
        XCTAssertFalse(framer.inputClosed())
    }

    func testHeadTooLarge() throws {
        let limits = HTTP1Limits(maxHeadBytes: 64, maxFields: 100)
        // Unterminated: refused as soon as the limit is reached, before any terminator could fit.
        var framer = HTTP1Framer(kind: .request, limits: limits)
        var buffer = ByteBuffer()
        var failedAt: Int?
        for (index, byte) in bytes("GET /" + String(repeating: "a", count: 100)).enumerated() where failedAt == nil {
            buffer.writeInteger(byte)
            do throws(HTTP1ParseError) {
                guard case .needMore = try framer.next(&buffer) else { return XCTFail("expected needMore") }
            } catch {
                XCTAssertEqual(error, .headTooLarge)
                failedAt = index + 1
            }
        }
        XCTAssertEqual(failedAt, 64)
        // Complete but one byte over, whole and byte by byte.
        let exact = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 64 - 32) + "\r\n\r\n"
        XCTAssertEqual(exact.utf8.count, 64)
        XCTAssertEqual(try frame(bytes(exact), .request, step: 1, limits: limits).messages.count, 1)
        XCTAssertEqual(try frame(bytes(exact), .request, limits: limits).messages.count, 1)
        let over = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 65 - 32) + "\r\n\r\n"
        XCTAssertEqual(frameError(bytes(over), .request, limits: limits), .headTooLarge)
        XCTAssertEqual(frameError(bytes(over), .request, step: 1, limits: limits), .headTooLarge)
        XCTAssertEqual(frameError(bytes(over), .response, limits: limits), .headTooLarge)
    }

    func testTooManyFields() {
        let limits = HTTP1Limits(maxHeadBytes: 65_536, maxFields: 2)
        XCTAssertNil(frameError(bytes("GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\n\r\n"), .request, limits: limits))
        XCTAssertEqual(frameError(bytes("GET / HTTP/1.1\r\nHost: a\r\nB: 2\r\nC: 3\r\n\r\n"), .request, limits: limits), .tooManyFields)
    }

    func testLimitsCanChangeBetweenMessages() throws {
        var framer = HTTP1Framer(kind: .request, limits: HTTP1Limits())
        var buffer = ByteBuffer(string: Wire.curlGET + Wire.curlGET)
        _ = try framer.next(&buffer)
        _ = try framer.next(&buffer)
        framer.limits = HTTP1Limits(maxHeadBytes: 32, maxFields: 100)
        XCTAssertThrowsError(try framer.next(&buffer)) { XCTAssertEqual($0 as? HTTP1ParseError, .headTooLarge) }
    }

    // MARK: Chunked body rules

    func testChunkedBodyRefusals() {
        let cases: [(String, HTTP1ParseError)] = [
            ("zz\r\n", .malformed("invalid chunk size")),
            ("\r\n", .malformed("invalid chunk size")),
            ("-1\r\n", .malformed("invalid chunk size")),
            ("+5\r\nhello\r\n0\r\n\r\n", .malformed("invalid chunk size")),
            ("0x5\r\nhello\r\n", .malformed("invalid chunk size")),
            (";ext\r\n", .malformed("invalid chunk size")),
            ("1000000000000000\r\n", .malformed("chunk size overflow")),
            ("5\nhello\r\n0\r\n\r\n", .malformed("invalid chunk size")),
            ("5\r\rhello", .malformed("CR without LF in chunk size line")),
            ("5 \r\nhello\r\n0\r\n\r\n", .malformed("invalid chunk extension")),
            ("5 x\r\nhello\r\n", .malformed("invalid chunk extension")),
            ("5;a\u{0}b\r\nhello\r\n", .malformed("invalid chunk extension")),
            ("5;a\nb\r\nhello\r\n", .malformed("invalid chunk extension")),
            ("5;" + String(repeating: "a", count: 5_000) + "\r\nhello\r\n", .malformed("chunk size line too long")),
            ("5\r\nhelloX\r\n0\r\n\r\n", .malformed("missing CRLF after chunk data")),
            ("5\r\nhello\n0\r\n\r\n", .malformed("missing CRLF after chunk data")),
            ("5\r\nhello\rX0\r\n\r\n", .malformed("missing CRLF after chunk data")),
            ("5\r\nhello world\r\n0\r\n\r\n", .malformed("missing CRLF after chunk data")),
            ("0\r\n X: y\r\n\r\n", .malformed("obs-fold")),
            ("0\r\nX : y\r\n\r\n", .malformed("whitespace before colon")),
            ("0\r\nX@: y\r\n\r\n", .malformed("invalid field name")),
            ("0\r\n: y\r\n\r\n", .malformed("empty field name")),
            ("0\r\nX: a\u{0}b\r\n\r\n", .malformed("invalid character in field value")),
            ("0\r\nX: a\nb\r\n\r\n", .malformed("invalid character in field value")),
            ("0\r\nX: a\rb\r\n\r\n", .malformed("CR without LF")),
            ("0\r\n\r\r", .malformed("CR without LF")),
            ("0\r\n\n", .malformed("invalid field name")),
        ]
        for (body, expected) in cases {
            let wire = bytes(Wire.pythonChunkedHead + body)
            XCTAssertEqual(frameError(wire, .request), expected, body.debugDescription)
            XCTAssertEqual(frameError(wire, .request, step: 1), expected, "byte by byte " + body.debugDescription)
            XCTAssertEqual(frameError(wire, .request, strip: true), expected, "stripping " + body.debugDescription)
        }
    }

    func testFifteenHexDigitsAreAccepted() throws {
        let result = try frame(bytes(Wire.pythonChunkedHead + "0fffffffffffffF\r\nabc"), .request)
        XCTAssertEqual(result.messages.first?.body, bytes("0fffffffffffffF\r\nabc"))
        XCTAssertEqual(result.messages.first?.ended, false)
    }

    func testTrailerLimits() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        let limits = HTTP1Limits(maxHeadBytes: 100, maxFields: 2)
        let bigTrailer = "0\r\nX-Big: " + String(repeating: "t", count: 100) + "\r\n\r\n"
        XCTAssertEqual(frameError(bytes(head + bigTrailer), .request, limits: limits), .headTooLarge)
        XCTAssertEqual(frameError(bytes(head + bigTrailer), .request, step: 1, limits: limits), .headTooLarge)
        let threeTrailers = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        XCTAssertEqual(frameError(bytes(head + threeTrailers), .request, limits: limits), .tooManyFields)
        XCTAssertNil(frameError(bytes(head + "0\r\nA: 1\r\nB: 2\r\n\r\n"), .request, limits: limits))
    }
}

// MARK: - Driving the framer

/// One framed message: its head, its body bytes concatenated, and how many `.body` events carried them.
struct FramedMessage {
    var head: HTTP1Head
    var body: [UInt8] = []
    var bodyEvents = 0
    var ended = false
}

/// Appends each piece to `buffer` in turn and calls `next` until `.needMore` after each (and once
/// before the first, for what is already buffered).
func drive(
    _ framer: inout HTTP1Framer,
    _ buffer: inout ByteBuffer,
    _ pieces: [ArraySlice<UInt8>],
    file: StaticString = #filePath,
    line: UInt = #line
) throws(HTTP1ParseError) -> [FramedMessage] {
    var messages: [FramedMessage] = []
    var pending = pieces[...]
    while true {
        var events = 0
        drain: while true {
            events += 1
            if events > 100_000 {
                XCTFail("framer does not settle", file: file, line: line)
                return messages
            }
            switch try framer.next(&buffer) {
            case .needMore:
                break drain
            case .head(let head):
                if let last = messages.last, !last.ended {
                    XCTFail("head before the previous message ended", file: file, line: line)
                }
                messages.append(FramedMessage(head: head))
            case .body(let slice):
                XCTAssertGreaterThan(slice.readableBytes, 0, "empty body slice", file: file, line: line)
                guard !messages.isEmpty, !messages[messages.count - 1].ended else {
                    XCTFail("body outside a message", file: file, line: line)
                    continue
                }
                messages[messages.count - 1].body += slice.readableBytesView
                messages[messages.count - 1].bodyEvents += 1
            case .end:
                guard !messages.isEmpty, !messages[messages.count - 1].ended else {
                    XCTFail("end outside a message", file: file, line: line)
                    continue
                }
                messages[messages.count - 1].ended = true
            }
        }
        guard let piece = pending.popFirst() else { return messages }
        buffer.writeBytes(piece)
    }
}

/// `wire` split into pieces of `step` bytes.
func split(_ wire: [UInt8], step: Int) -> [ArraySlice<UInt8>] {
    stride(from: 0, to: wire.count, by: max(step, 1)).map { wire[$0..<min($0 + max(step, 1), wire.count)] }
}

struct FrameResult {
    var messages: [FramedMessage]
    /// Bytes left in the buffer.
    var leftover: Int
    var bodyFraming: HTTP1Framer.BodyFraming
}

func frame(
    _ wire: [UInt8],
    _ kind: HTTP1MessageKind,
    step: Int = Int.max,
    limits: HTTP1Limits = HTTP1Limits(),
    strip: Bool = false,
    configure: (inout HTTP1Framer) -> Void = { _ in }
) throws(HTTP1ParseError) -> FrameResult {
    var framer = HTTP1Framer(kind: kind, limits: limits)
    framer.stripChunkFraming = strip
    configure(&framer)
    var buffer = ByteBuffer()
    let messages = try drive(&framer, &buffer, split(wire, step: step))
    return FrameResult(messages: messages, leftover: buffer.readableBytes, bodyFraming: framer.bodyFraming)
}

/// The error framing `wire` ends in, or nil.
func frameError(
    _ wire: [UInt8],
    _ kind: HTTP1MessageKind,
    step: Int = Int.max,
    limits: HTTP1Limits = HTTP1Limits(),
    strip: Bool = false
) -> HTTP1ParseError? {
    do throws(HTTP1ParseError) {
        _ = try frame(wire, kind, step: step, limits: limits, strip: strip)
        return nil
    } catch {
        return error
    }
}

/// Heads and bodies put back together: equals the input when nothing was stripped or skipped.
func reassemble(_ messages: [FramedMessage]) -> [UInt8] {
    messages.flatMap { Array($0.head.bytes.readableBytesView) + $0.body }
}
