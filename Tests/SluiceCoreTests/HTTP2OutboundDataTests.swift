import NIOCore
import SluiceCore
import XCTest

/// DATA held for the peer's windows (RFC 9113 §6.9, §6.9.2), after h2spec's `http2/6.9.1`
/// ("sends SETTINGS_INITIAL_WINDOW_SIZE 1: the DATA frame has 1 byte") and `6.9.2` cases.
final class HTTP2OutboundDataTests: XCTestCase {
    private func bytes(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: 0x61, count: count) }

    func testDataWaitsForTheStreamWindow() throws {
        var out = HTTP2OutboundData()
        try out.setInitialWindowSize(1)
        out.open(streamID: 1)
        out.enqueue(streamID: 1, data: bytes(3), endStream: true)
        XCTAssertEqual(out.nextFrames(), [.init(streamID: 1, data: bytes(1), endStream: false)])
        XCTAssertEqual(out.nextFrames(), [])
        XCTAssertEqual(out.bufferedBytes, 2)
        try out.windowUpdate(streamID: 1, increment: 5)
        XCTAssertEqual(out.nextFrames(), [.init(streamID: 1, data: bytes(2), endStream: true)])
        XCTAssertEqual(out.bufferedBytes, 0)
        XCTAssertEqual(out.connection.size, 65_535 - 3)
    }

    func testFramesAreCutToMaxFrameSizeAndStreamsTakeTurns() {
        var out = HTTP2OutboundData()
        out.open(streamID: 1)
        out.open(streamID: 3)
        out.enqueue(streamID: 1, data: bytes(40_000), endStream: true)
        out.enqueue(streamID: 3, data: bytes(10), endStream: true)
        let frames = out.nextFrames()
        XCTAssertEqual(frames.map(\.streamID), [1, 3, 1, 1])
        XCTAssertEqual(frames.map(\.data.readableBytes), [16_384, 10, 16_384, 7_232])
        XCTAssertEqual(frames.map(\.endStream), [false, true, false, true])
    }

    func testTheConnectionWindowIsShared() throws {
        var out = HTTP2OutboundData()
        out.open(streamID: 1)
        out.open(streamID: 3)
        out.enqueue(streamID: 1, data: bytes(65_535), endStream: false)
        _ = out.nextFrames()
        XCTAssertEqual(out.connection.size, 0)
        // Stream 3 has its own window but the connection's is spent; its empty END_STREAM
        // frame needs no window and goes at once.
        out.enqueue(streamID: 3, data: bytes(5), endStream: false)
        out.enqueue(streamID: 3, data: bytes(0), endStream: true)
        XCTAssertEqual(out.nextFrames(), [])
        try out.windowUpdate(streamID: 0, increment: 5)
        XCTAssertEqual(out.nextFrames(), [.init(streamID: 3, data: bytes(5), endStream: false),
                                          .init(streamID: 3, data: bytes(0), endStream: true)])
    }

    func testSettingsChangeAndOverflowAndClose() throws {
        var out = HTTP2OutboundData()
        out.open(streamID: 1)
        out.enqueue(streamID: 1, data: bytes(100), endStream: false)
        _ = out.nextFrames()
        // §6.9.2: lowering the initial window below what is in flight makes it negative.
        try out.setInitialWindowSize(50)
        XCTAssertEqual(out.window(of: 1), -50)
        // From -50, 2^31-1 fits (2,147,483,597); 51 more would pass 2^31-1: the stream's error.
        try out.windowUpdate(streamID: 1, increment: 2_147_483_647)
        XCTAssertThrowsError(try out.windowUpdate(streamID: 1, increment: 51)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.streamID, 1)
        }
        out.enqueue(streamID: 1, data: bytes(7), endStream: true)
        XCTAssertEqual(out.close(streamID: 1), 7)
        XCTAssertEqual(out.bufferedBytes, 0)
        XCTAssertEqual(out.nextFrames(), [])
        // No open stream is left to overflow.
        XCTAssertNoThrow(try out.setInitialWindowSize(2_147_483_647))
    }
}
