import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import SluiceCore
import XCTest

@testable import SluiceProxy

/// Sluice's HTTP/2 codec driven through an EmbeddedChannel with real frame bytes (RFC 9113
/// §4.1 layout; field blocks from RFC 7541 Appendix C and hand-encoded literals): what the
/// relay sees, what goes back on the wire, and the hostile-input limits (issue 24 item 3).
final class HTTP2WireHandlerTests: XCTestCase {
    /// What the relay would see: frames and the codec's calls.
    private final class Collector: ChannelInboundHandler, HTTP2WireEvents, @unchecked Sendable {
        typealias InboundIn = HTTP2Frame
        var frames: [HTTP2Frame] = []
        var closed: [(HTTP2StreamID, HTTP2ErrorCode?)] = []
        var connectionWindow: Int?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames.append(unwrapInboundIn(data)) }
        func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?) { closed.append((streamID, reason)) }
        func connectionWindowLow(remaining: Int) { connectionWindow = remaining }
    }

    private struct WrittenFrame: Equatable {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags]
            + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    private func settings(_ pairs: [(UInt16, UInt32)] = []) -> [UInt8] {
        frame(type: 0x4, pairs.flatMap { id, value in
            [UInt8(id >> 8), UInt8(id & 0xff), UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        })
    }

    /// RFC 7541 C.2.1-style literal without indexing, new name.
    private func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }

    /// `:method GET` (or POST), `:scheme http`, `:path /` and `:authority a.test`.
    private func request(post: Bool = false, extra: [UInt8] = []) -> [UInt8] {
        [post ? 0x83 : 0x82, 0x86, 0x84, 0x01, 6] + Array("a.test".utf8) + extra
    }

    private func channel(_ mode: HTTP2WireHandler.Mode, limits: HTTP2Limits = HTTP2Limits()) throws -> (EmbeddedChannel, Collector) {
        let collector = Collector()
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let handler = HTTP2WireHandler(mode: mode, limits: limits)
        handler.events = collector
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(collector)
        return (channel, collector)
    }

    private func send(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
    }

    /// Every frame the handler wrote so far.
    private func written(_ channel: EmbeddedChannel) throws -> [WrittenFrame] {
        var all = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&chunk) }
        if all.readableBytesView.starts(with: preface) { all.moveReaderIndex(forwardBy: preface.count) }
        var frames: [WrittenFrame] = []
        while all.readableBytes >= 9, let b0 = all.readInteger(as: UInt8.self), let b12 = all.readInteger(as: UInt16.self),
            let type = all.readInteger(as: UInt8.self), let flags = all.readInteger(as: UInt8.self), let stream = all.readInteger(as: UInt32.self),
            let payload = all.readBytes(length: Int(b0) << 16 | Int(b12))
        {
            frames.append(WrittenFrame(type: type, flags: flags, stream: stream, payload: payload))
        }
        return frames
    }

    private func goAwayCode(_ frames: [WrittenFrame]) -> UInt32? {
        guard let goAway = frames.first(where: { $0.type == 0x7 }) else { return nil }
        return goAway.payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private func resets(_ frames: [WrittenFrame]) -> [(UInt32, UInt32)] {
        frames.filter { $0.type == 0x3 }.map { ($0.stream, $0.payload.reduce(0) { $0 << 8 | UInt32($1) }) }
    }

    // MARK: server side

    func testCurlOpeningIsAnsweredAndItsRequestDecoded() throws {
        let (channel, collector) = try channel(.server)
        // curl 7.88's opening (SETTINGS, connection WINDOW_UPDATE, HEADERS with RFC 7541 C.4.1's Huffman block).
        try send(channel, preface + [
            0x00, 0x00, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64,
            0x00, 0x04, 0x00, 0xa0, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3e, 0x7f, 0x00, 0x01,
            0x00, 0x00, 0x11, 0x01, 0x05, 0x00, 0x00, 0x00, 0x01,
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ])
        let out = try written(channel)
        XCTAssertEqual(out.first?.type, 0x4, "our SETTINGS first")
        XCTAssertTrue(out.contains { $0.type == 0x4 && $0.flags == 0x1 }, "the client's SETTINGS acknowledged")
        guard case .headers(let headers) = collector.frames.first?.payload else { return XCTFail("\(collector.frames)") }
        XCTAssertEqual(collector.frames.first?.streamID, 1)
        XCTAssertTrue(headers.endStream)
        XCTAssertEqual(headers.headers.first(name: ":authority"), "www.example.com")
        XCTAssertEqual(headers.headers.first(name: ":method"), "GET")

        // The response goes out with the static encoder; END_STREAM both ways closes the stream.
        let response = HPACKHeaders([(":status", "200"), ("content-type", "text/plain")])
        channel.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: response, endStream: true))), promise: nil)
        channel.flush()
        let reply = try written(channel)
        XCTAssertEqual(reply.map(\.type), [0x1])
        XCTAssertEqual(reply.first?.flags, 0x5)
        XCTAssertEqual(reply.first?.payload, [0x88, 0x0f, 0x10, 10] + Array("text/plain".utf8))
        XCTAssertEqual(collector.closed.map(\.0), [1])
    }

    func testPrefaceMismatchClosesTheConnection() throws {
        let (channel, _) = try channel(.server)
        try send(channel, Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        XCTAssertFalse(channel.isActive)
    }

    func testMalformedRequestBlocksResetOnlyTheirStream() throws {
        let (channel, collector) = try channel(.server)
        try send(channel, preface + settings()
            + frame(type: 0x1, flags: 0x5, stream: 1, request(extra: literal("X-Upper", "1")))
            + frame(type: 0x1, flags: 0x5, stream: 3, request(extra: literal("connection", "keep-alive")))
            + frame(type: 0x1, flags: 0x5, stream: 5, [0x82, 0x86, 0x01, 6] + Array("a.test".utf8))  // no :path
            + frame(type: 0x1, flags: 0x5, stream: 7, request(extra: literal("te", "trailers"))))
        let rst = resets(try written(channel))
        XCTAssertEqual(rst.map(\.0), [1, 3, 5])
        XCTAssertTrue(rst.allSatisfy { $0.1 == 0x1 }, "PROTOCOL_ERROR")
        XCTAssertEqual(collector.frames.map(\.streamID), [7], "only the valid request reaches the relay")
        XCTAssertTrue(channel.isActive)
    }

    func testBodyLongerThanContentLengthIsAStreamError() throws {
        let (channel, collector) = try channel(.server)
        try send(channel, preface + settings()
            + frame(type: 0x1, flags: 0x4, stream: 1, request(post: true, extra: [0x0f, 0x0d, 1, 0x33]))  // content-length: 3
            + frame(type: 0x0, flags: 0x1, stream: 1, Array("four".utf8)))
        XCTAssertEqual(resets(try written(channel)).map(\.1), [0x1])
        XCTAssertEqual(collector.closed.map(\.1), [.protocolError])
    }

    func testStreamsPastMaxConcurrentStreamsAreRefused() throws {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreams = 2
        let (channel, collector) = try channel(.server, limits: limits)
        var bytes = preface + settings()
        for id in stride(from: UInt32(1), through: 7, by: 2) { bytes += frame(type: 0x1, flags: 0x4, stream: id, request(post: true)) }
        try send(channel, bytes)
        XCTAssertEqual(resets(try written(channel)).map(\.0), [5, 7])
        XCTAssertTrue(resets(try written(channel)).allSatisfy { $0.1 == 0x7 })
        XCTAssertEqual(collector.frames.map(\.streamID), [1, 3])
    }

    func testRapidResetIsAnsweredWithEnhanceYourCalm() throws {
        var limits = HTTP2Limits()
        limits.maxResetsPerWindow = 10
        let (channel, _) = try channel(.server, limits: limits)
        var bytes = preface + settings()
        for i in 0..<11 {
            let id = UInt32(2 * i + 1)
            bytes += frame(type: 0x1, flags: 0x4, stream: id, request(post: true)) + frame(type: 0x3, stream: id, [0, 0, 0, 8])
        }
        try send(channel, bytes)
        XCTAssertEqual(goAwayCode(try written(channel)), 0xb)
        XCTAssertFalse(channel.isActive)
    }

    func testPingFloodIsAnsweredWithEnhanceYourCalm() throws {
        var limits = HTTP2Limits()
        limits.maxControlFramesPerWindow = 20
        let (channel, _) = try channel(.server, limits: limits)
        var bytes = preface + settings()
        for _ in 0..<25 { bytes += frame(type: 0x6, [1, 2, 3, 4, 5, 6, 7, 8]) }
        try send(channel, bytes)
        let out = try written(channel)
        XCTAssertEqual(out.filter { $0.type == 0x6 && $0.flags == 0x1 }.first?.payload, [1, 2, 3, 4, 5, 6, 7, 8], "PING answered")
        XCTAssertEqual(goAwayCode(out), 0xb)
    }

    func testControlFramesQueuedForAPeerThatDoesNotReadAreBounded() throws {
        var limits = HTTP2Limits()
        limits.maxBufferedControlFrames = 5
        let (channel, _) = try channel(.server, limits: limits)
        try send(channel, preface + settings())
        _ = try written(channel)
        // The peer stops reading: every PING ACK we must queue counts, past 5 the connection ends.
        channel.isWritable = false
        var pings: [UInt8] = []
        for _ in 0..<6 { pings += frame(type: 0x6, [0, 0, 0, 0, 0, 0, 0, 1]) }
        try send(channel, pings)
        XCTAssertEqual(goAwayCode(try written(channel)), 0xb)
        XCTAssertFalse(channel.isActive)
    }

    func testContinuationFloodEndsTheConnection() throws {
        let (channel, collector) = try channel(.server)
        var bytes = preface + settings() + frame(type: 0x1, stream: 1, [0x82])
        for _ in 0..<10 { bytes += frame(type: 0x9, stream: 1, [0x86]) }
        try send(channel, bytes)
        XCTAssertEqual(goAwayCode(try written(channel)), 0xb)
        XCTAssertTrue(collector.frames.isEmpty)
    }

    func testEmptyDataFloodEndsTheConnection() throws {
        let (channel, _) = try channel(.server)
        try send(channel, preface + settings() + frame(type: 0x1, flags: 0x4, stream: 1, request(post: true))
            + frame(type: 0x0, stream: 1) + frame(type: 0x0, stream: 1))
        XCTAssertEqual(goAwayCode(try written(channel)), 0xb)
    }

    func testDataPastTheStreamWindowIsAFlowControlError() throws {
        var limits = HTTP2Limits()
        limits.initialWindowSize = 16
        let (channel, collector) = try channel(.server, limits: limits)
        // Acknowledged: the 16-byte window applies (before, the protocol's 65,535 would).
        try send(channel, preface + settings() + frame(type: 0x4, flags: 0x1)
            + frame(type: 0x1, flags: 0x4, stream: 1, request(post: true))
            + frame(type: 0x0, stream: 1, Array(repeating: 0x61, count: 10)))
        XCTAssertNil(collector.connectionWindow, "the connection window is far above half: nothing for the relay to reopen")
        try send(channel, frame(type: 0x0, stream: 1, Array(repeating: 0x61, count: 10)))
        XCTAssertEqual(resets(try written(channel)).last?.1, 0x3, "FLOW_CONTROL_ERROR")
        XCTAssertTrue(channel.isActive)
    }

    func testTheRelayHearsOfTheConnectionWindowOnceItIsHalfUsed() throws {
        let (channel, collector) = try channel(.server)
        let chunk = Array(repeating: UInt8(0x61), count: 16_384)
        try send(channel, preface + settings() + frame(type: 0x1, flags: 0x4, stream: 1, request(post: true))
            + frame(type: 0x0, stream: 1, chunk) + frame(type: 0x0, stream: 1, Array(chunk.dropLast())))
        XCTAssertNil(collector.connectionWindow, "32,768 bytes left of 65,535: more than half")
        try send(channel, frame(type: 0x0, stream: 1, [0x61]))
        XCTAssertEqual(collector.connectionWindow, 32_767, "half or less: the relay tops it up")
    }

    func testHeaderListOverTheLimitEndsTheConnection() throws {
        var limits = HTTP2Limits()
        limits.maxHeaderListSize = 100
        let (channel, collector) = try channel(.server, limits: limits)
        try send(channel, preface + settings()
            + frame(type: 0x1, flags: 0x5, stream: 1, request(extra: literal("x-big", String(repeating: "v", count: 120)))))
        XCTAssertEqual(goAwayCode(try written(channel)), 0x9, "COMPRESSION_ERROR")
        XCTAssertTrue(collector.frames.isEmpty)
    }

    // MARK: flow control of what we send

    func testDataWaitsForThePeersWindowAndItsPromiseForTheBytes() throws {
        let (channel, _) = try channel(.server)
        try send(channel, preface + settings([(0x4, 5)]) + frame(type: 0x1, flags: 0x5, stream: 1, request()))
        _ = try written(channel)
        channel.write(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "200")])))), promise: nil)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let done = NIOLockedValueBox(false)
        promise.futureResult.whenSuccess { done.withLockedValue { $0 = true } }
        channel.write(HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(ByteBuffer(string: "0123456789")), endStream: true))), promise: promise)
        channel.flush()
        var out = try written(channel)
        XCTAssertEqual(out.filter { $0.type == 0x0 }.map(\.payload), [Array("01234".utf8)])
        XCTAssertFalse(done.withLockedValue { $0 }, "half the bytes are still waiting")
        try send(channel, frame(type: 0x8, stream: 1, [0, 0, 0, 100]))
        out = try written(channel)
        XCTAssertEqual(out.filter { $0.type == 0x0 }.map(\.payload), [Array("56789".utf8)])
        XCTAssertEqual(out.last?.flags, 0x1, "END_STREAM on the last")
        XCTAssertTrue(done.withLockedValue { $0 })
    }

    // MARK: client side

    func testClientHoldsStreamsPastTheOriginsLimitAndChecksResponses() throws {
        let (channel, collector) = try channel(.client)
        var out = try written(channel)
        XCTAssertEqual(out.first?.type, 0x4, "preface and SETTINGS")
        try send(channel, settings([(0x3, 1)]))
        let get = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a.test")])
        for id in [1, 3] {
            channel.write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: get, endStream: true))), promise: nil)
        }
        channel.flush()
        out = try written(channel)
        XCTAssertEqual(out.filter { $0.type == 0x1 }.map(\.stream), [1], "stream 3 waits for a slot")
        // An invalid response (uppercase name) resets stream 1 with PROTOCOL_ERROR, which frees the slot.
        try send(channel, frame(type: 0x1, flags: 0x5, stream: 1, [0x88] + literal("Bad", "x")))
        XCTAssertEqual(collector.closed.first?.1, .protocolError)
        channel.flush()
        out = try written(channel)
        XCTAssertEqual(resets(out).first?.0, 1)
        XCTAssertEqual(out.filter { $0.type == 0x1 }.map(\.stream), [3])
        // A 204 with a content-length carries no body; it ends the stream.
        try send(channel, frame(type: 0x1, flags: 0x5, stream: 3, [0x89, 0x0f, 0x0d, 1, 0x35]))
        guard case .headers(let response) = collector.frames.last?.payload else { return XCTFail() }
        XCTAssertEqual(response.headers.first(name: ":status"), "204")
        XCTAssertEqual(collector.closed.last?.0, 3)
    }

    func testGoAwayClosesOurStreamsAboveItsLastStream() throws {
        let (channel, collector) = try channel(.client)
        try send(channel, settings())
        let get = HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a.test")])
        for id in [1, 3] {
            channel.write(HTTP2Frame(streamID: HTTP2StreamID(id), payload: .headers(.init(headers: get, endStream: true))), promise: nil)
        }
        try send(channel, frame(type: 0x7, [0, 0, 0, 1, 0, 0, 0, 0]))
        guard case .goAway = collector.frames.last?.payload else { return XCTFail("\(collector.frames)") }
        XCTAssertEqual(collector.closed.map(\.0), [3])
        XCTAssertEqual(collector.closed.first?.1, .refusedStream)
    }
}
