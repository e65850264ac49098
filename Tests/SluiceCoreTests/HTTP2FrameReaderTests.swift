import NIOCore
import SluiceCore
import XCTest

/// The frame reader against RFC 9113's frame layouts (§4.1, §6) and the malformed-frame cases
/// of h2spec (summerwind/h2spec, `http2/4.2`, `http2/6.x`), fed whole and one byte at a time.
final class HTTP2FrameReaderTests: XCTestCase {
    /// What curl --http2-prior-knowledge sends after the preface (curl 7.88): SETTINGS
    /// (MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 10 MiB, ENABLE_PUSH 0), a connection
    /// WINDOW_UPDATE, then HEADERS on stream 1 with END_STREAM | END_HEADERS; the field block
    /// is RFC 7541 Appendix C.4.1 (GET http://www.example.com/, Huffman).
    static let curlOpening: [UInt8] = [
        0x00, 0x00, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x03, 0x00, 0x00, 0x00, 0x64,
        0x00, 0x04, 0x00, 0xa0, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3e, 0x7f, 0x00, 0x01,
        0x00, 0x00, 0x11, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01,
    ] + c41Block
    /// RFC 7541 C.4.1: `:method GET, :scheme http, :path /, :authority www.example.com`.
    static let c41Block: [UInt8] = [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// All frames of `bytes`, read at once and one byte at a time (both must agree).
    private func frames(_ bytes: [UInt8], reader: HTTP2FrameReader = HTTP2FrameReader(), file: StaticString = #filePath, line: UInt = #line) throws -> [HTTP2WireFrame] {
        var whole = reader
        var all = buffer(bytes)
        var wholeFrames: [HTTP2WireFrame] = []
        while let frame = try whole.next(&all) { wholeFrames.append(frame) }
        XCTAssertEqual(all.readableBytes, 0, "bytes left over", file: file, line: line)

        var split = reader
        var piecewise = ByteBuffer()
        var splitFrames: [HTTP2WireFrame] = []
        for byte in bytes {
            piecewise.writeInteger(byte)
            while let frame = try split.next(&piecewise) { splitFrames.append(frame) }
        }
        XCTAssertEqual(wholeFrames, splitFrames, "whole vs one byte at a time", file: file, line: line)
        return wholeFrames
    }

    private func error(_ bytes: [UInt8], reader: HTTP2FrameReader = HTTP2FrameReader()) -> HTTP2WireError? {
        var reader = reader
        var input = buffer(bytes)
        do {
            while try reader.next(&input) != nil {}
        } catch {
            return error
        }
        return nil
    }

    func testCurlsOpeningFrames() throws {
        let frames = try frames(Self.curlOpening)
        XCTAssertEqual(frames, [
            .settings(ack: false, [HTTP2WireSetting(3, 100), HTTP2WireSetting(4, 10_485_760), HTTP2WireSetting(2, 0)]),
            .windowUpdate(streamID: 0, increment: 1_048_510_465),
            .headers(streamID: 1, block: buffer(Self.c41Block), endStream: true, priority: nil),
        ])
    }

    func testIncompleteFramesConsumeNothing() throws {
        // Frame boundaries in curl's opening: SETTINGS ends at 27, WINDOW_UPDATE at 40, HEADERS at 66.
        let boundaries = [0, 27, 40, 66]
        XCTAssertEqual(Self.curlOpening.count, 66)
        for cut in 0..<Self.curlOpening.count {
            var reader = HTTP2FrameReader()
            var input = buffer(Array(Self.curlOpening.prefix(cut)))
            var count = 0
            while try reader.next(&input) != nil { count += 1 }
            let complete = boundaries.filter { $0 <= cut }
            XCTAssertEqual(count, complete.count - 1, "cut at \(cut)")
            XCTAssertEqual(input.readableBytes, cut - (complete.last ?? 0), "cut at \(cut): an incomplete frame is left whole")
        }
    }

    func testPaddedDataAndHeaders() throws {
        // §6.1: Pad Length 3, "hi", three zero octets; all 6 payload bytes count against the window.
        let data: [UInt8] = [0x00, 0x00, 0x06, 0x00, 0x09, 0x00, 0x00, 0x00, 0x03, 0x03, 0x68, 0x69, 0x00, 0x00, 0x00]
        XCTAssertEqual(try frames(data), [.data(streamID: 3, data: buffer([0x68, 0x69]), endStream: true, flowControlledLength: 6)])
        // §6.2: PADDED | PRIORITY | END_HEADERS: Pad Length 1, exclusive dependency on 1, weight 15.
        let headers: [UInt8] = [0x00, 0x00, 0x09, 0x01, 0x2c, 0x00, 0x00, 0x00, 0x03,
                                0x01, 0x80, 0x00, 0x00, 0x01, 0x0f, 0x82, 0x86, 0x00]
        XCTAssertEqual(try frames(headers), [
            .headers(streamID: 3, block: buffer([0x82, 0x86]), endStream: false,
                     priority: HTTP2WirePriority(exclusive: true, dependency: 1, weight: 15)),
        ])
    }

    func testHeadersJoinedWithContinuation() throws {
        let block = Self.c41Block
        let bytes: [UInt8] = [0x00, 0x00, 0x05, 0x01, 0x01, 0x00, 0x00, 0x00, 0x01] + block[0..<5]
            + [0x00, 0x00, 0x06, 0x09, 0x00, 0x00, 0x00, 0x00, 0x01] + block[5..<11]
            + [0x00, 0x00, 0x06, 0x09, 0x04, 0x00, 0x00, 0x00, 0x01] + block[11...]
        XCTAssertEqual(try frames(bytes), [.headers(streamID: 1, block: buffer(block), endStream: true, priority: nil)])
    }

    func testControlFrames() throws {
        let bytes: [UInt8] = [
            // PING ACK, opaque 0x0102030405060708
            0x00, 0x00, 0x08, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8,
            // RST_STREAM stream 5 CANCEL
            0x00, 0x00, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x08,
            // GOAWAY last 7, ENHANCE_YOUR_CALM, debug "x"
            0x00, 0x00, 0x09, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x0b, 0x78,
            // PRIORITY stream 3 on 0 weight 255
            0x00, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0xff,
            // SETTINGS ACK
            0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00,
            // an extension frame type 0xfa, ignored; then an unknown setting id 0x99 is dropped
            0x00, 0x00, 0x02, 0xfa, 0x00, 0x00, 0x00, 0x00, 0x01, 0xaa, 0xbb,
            0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x01,
        ]
        XCTAssertEqual(try frames(bytes), [
            .ping(ack: true, opaque: 0x0102_0304_0506_0708),
            .rstStream(streamID: 5, code: .cancel),
            .goAway(lastStreamID: 7, code: .enhanceYourCalm, debugData: buffer([0x78])),
            .priority(streamID: 3, HTTP2WirePriority(exclusive: false, dependency: 0, weight: 255)),
            .settings(ack: true, []),
            .unknown(type: 0xfa, streamID: 1),
            .settings(ack: false, []),
        ])
    }

    func testFrameOverMaxFrameSizeIsRefusedBeforeItsPayload() {
        // h2spec http2/4.2/2: a DATA frame of 16,385 bytes (only its header sent).
        let header: [UInt8] = [0x00, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]
        XCTAssertEqual(error(header)?.code, .frameSizeError)
        XCTAssertEqual(error(header)?.isConnectionError, true)
        XCTAssertNil(error(header, reader: HTTP2FrameReader(maxFrameSize: 16_385)))
    }

    func testMalformedFramesAndTheirErrors() {
        let cases: [(String, [UInt8], HTTP2WireErrorCode, UInt32)] = [
            // h2spec 6.1/1: DATA on stream 0.
            ("DATA on 0", [0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61], .protocolError, 0),
            // h2spec 6.1/3: padding as long as the payload.
            ("DATA padding", [0x00, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x02, 0x61], .protocolError, 0),
            // h2spec 6.2/2: HEADERS on stream 0.
            ("HEADERS on 0", [0x00, 0x00, 0x01, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x82], .protocolError, 0),
            // h2spec 6.2/4: HEADERS padding too long.
            ("HEADERS padding", [0x00, 0x00, 0x02, 0x01, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x05, 0x82], .protocolError, 0),
            // h2spec 5.3.1/1: a stream depending on itself: a stream error.
            ("self dependency", [0x00, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x10], .protocolError, 3),
            // h2spec 6.3/2: PRIORITY of 4 bytes: a stream FRAME_SIZE_ERROR.
            ("PRIORITY length", [0x00, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01], .frameSizeError, 3),
            // h2spec 6.4/2, 6.4/3.
            ("RST_STREAM on 0", [0x00, 0x00, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08], .protocolError, 0),
            ("RST_STREAM length", [0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x08], .frameSizeError, 0),
            // h2spec 6.5/1, 6.5/2, 6.5/3.
            ("SETTINGS ACK payload", [0x00, 0x00, 0x06, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01], .frameSizeError, 0),
            ("SETTINGS on 1", [0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01], .protocolError, 0),
            ("SETTINGS length", [0x00, 0x00, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00], .frameSizeError, 0),
            // h2spec 6.5.2/1, 6.5.2/2, 6.5.2/3, 6.5.2/4.
            ("ENABLE_PUSH 2", [0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02], .protocolError, 0),
            ("INITIAL_WINDOW_SIZE 2^31", [0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x80, 0x00, 0x00, 0x00], .flowControlError, 0),
            ("MAX_FRAME_SIZE 16383", [0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x3f, 0xff], .protocolError, 0),
            ("MAX_FRAME_SIZE 2^24", [0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00], .protocolError, 0),
            // h2spec 6.7/3, 6.7/4.
            ("PING on 1", [0x00, 0x00, 0x08, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], .protocolError, 0),
            ("PING length", [0x00, 0x00, 0x06, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0], .frameSizeError, 0),
            // h2spec 6.8/1.
            ("GOAWAY on 1", [0x00, 0x00, 0x08, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], .protocolError, 0),
            // h2spec 6.9/1, 6.9/2, 6.9/3.
            ("WINDOW_UPDATE 0 on 0", [0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], .protocolError, 0),
            ("WINDOW_UPDATE 0 on 1", [0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], .protocolError, 1),
            ("WINDOW_UPDATE length", [0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01], .frameSizeError, 0),
            // h2spec 6.10/2, 6.10/3: CONTINUATION without HEADERS; another frame inside a field block.
            ("CONTINUATION alone", [0x00, 0x00, 0x01, 0x09, 0x04, 0x00, 0x00, 0x00, 0x01, 0x82], .protocolError, 0),
            ("DATA inside a block", [0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x82,
                                     0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61], .protocolError, 0),
            ("CONTINUATION on another stream", [0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x82,
                                                0x00, 0x00, 0x01, 0x09, 0x04, 0x00, 0x00, 0x00, 0x03, 0x86], .protocolError, 0),
            // §8.4: push is never enabled.
            ("PUSH_PROMISE", [0x00, 0x00, 0x05, 0x05, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x82], .protocolError, 0),
        ]
        for (name, bytes, code, stream) in cases {
            let error = error(bytes)
            XCTAssertEqual(error?.code, code, name)
            XCTAssertEqual(error?.streamID, stream, name)
        }
    }

    func testStreamErrorsConsumeTheirFrameAndReadingGoesOn() throws {
        var reader = HTTP2FrameReader()
        var input = buffer([0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x08, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 9])
        XCTAssertThrowsError(try reader.next(&input))
        XCTAssertEqual(try reader.next(&input), .ping(ack: false, opaque: 9))
    }

    func testContinuationFloodAndOversizedBlocks() {
        // The CONTINUATION flood (CVE-2024-27316 class): a field block that never ends.
        var flood: [UInt8] = [0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x82]
        for _ in 0..<6 { flood += [0x00, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86] }
        XCTAssertEqual(error(flood)?.code, .enhanceYourCalm)
        XCTAssertNil(error(Array(flood.dropLast(10))), "five CONTINUATION frames are allowed")
        // A block over the byte bound, in one frame or spread over several.
        let big = [0x00, 0x00, 0x0a, 0x01, 0x04, 0x00, 0x00, 0x00, 0x01] + [UInt8](repeating: 0x82, count: 10)
        XCTAssertEqual(error(big, reader: HTTP2FrameReader(maxFieldBlockBytes: 9))?.code, .enhanceYourCalm)
        XCTAssertNil(error(big, reader: HTTP2FrameReader(maxFieldBlockBytes: 10)))
        let spread: [UInt8] = [0x00, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x82, 0x82, 0x82, 0x82, 0x82,
                               0x00, 0x00, 0x05, 0x09, 0x04, 0x00, 0x00, 0x00, 0x01, 0x82, 0x82, 0x82, 0x82, 0x82]
        XCTAssertEqual(error(spread, reader: HTTP2FrameReader(maxFieldBlockBytes: 9))?.code, .enhanceYourCalm)
    }

    func testWriterOutputReadsBack() throws {
        var out = ByteBuffer()
        let block = buffer(Self.c41Block)
        HTTP2FrameWriter.writeSettings([HTTP2WireSetting(3, 100), HTTP2WireSetting(2, 0)], to: &out)
        HTTP2FrameWriter.writeSettingsAck(to: &out)
        // A 17-byte block over a 16,384 limit is one frame; over a 5-byte one, four.
        HTTP2FrameWriter.writeHeaders(streamID: 1, block: block, endStream: false, maxFrameSize: 16_384, to: &out)
        HTTP2FrameWriter.writeHeaders(streamID: 3, block: block, endStream: true, maxFrameSize: 5, to: &out)
        HTTP2FrameWriter.writeData(streamID: 1, data: buffer([1, 2, 3]), endStream: true, to: &out)
        HTTP2FrameWriter.writeWindowUpdate(streamID: 0, increment: 1 << 30, to: &out)
        HTTP2FrameWriter.writePing(opaque: 42, ack: true, to: &out)
        HTTP2FrameWriter.writeRSTStream(streamID: 3, code: .refusedStream, to: &out)
        HTTP2FrameWriter.writeGoAway(lastStreamID: 3, code: .noError, debugData: nil, to: &out)
        let bytes = Array(out.readableBytesView)
        XCTAssertEqual(try frames(bytes, reader: HTTP2FrameReader(maxContinuationFrames: 3)), [
            .settings(ack: false, [HTTP2WireSetting(3, 100), HTTP2WireSetting(2, 0)]),
            .settings(ack: true, []),
            .headers(streamID: 1, block: block, endStream: false, priority: nil),
            .headers(streamID: 3, block: block, endStream: true, priority: nil),
            .data(streamID: 1, data: buffer([1, 2, 3]), endStream: true, flowControlledLength: 3),
            .windowUpdate(streamID: 0, increment: 1 << 30),
            .ping(ack: true, opaque: 42),
            .rstStream(streamID: 3, code: .refusedStream),
            .goAway(lastStreamID: 3, code: .noError, debugData: ByteBuffer()),
        ])
        // The SETTINGS frame byte for byte (§6.5.1).
        XCTAssertEqual(Array(bytes.prefix(21)), [0x00, 0x00, 0x0c, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                 0x00, 0x03, 0x00, 0x00, 0x00, 0x64, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00])
    }
}
