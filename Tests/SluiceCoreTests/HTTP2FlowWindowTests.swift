import SluiceCore
import XCTest

/// Flow-control windows (RFC 9113 §6.9) and the flood counters, after h2spec's `http2/6.9.1`
/// and `http2/6.9.2` cases and NIOHTTP2's rate-limit behaviour (GOAWAY past the limit).
final class HTTP2FlowWindowTests: XCTestCase {
    func testInboundWindowRefusesMoreThanAdvertised() throws {
        var window = HTTP2FlowWindow(size: 65_535, streamID: 1)
        try window.received(65_535)
        XCTAssertEqual(window.size, 0)
        XCTAssertThrowsError(try window.received(1)) { error in
            XCTAssertEqual(error as? HTTP2WireError, HTTP2WireError(.flowControlError, streamID: 1, "1 bytes sent into a window of 0"))
        }
    }

    func testIncreasePast2To31MinusOneIsAFlowControlError() throws {
        // h2spec 6.9.1/2 (connection) and 6.9.1/3 (stream): 2^31-1 - 65,535 + 65,535 + 1.
        var connection = HTTP2FlowWindow(size: 65_535, streamID: 0)
        try connection.increase(by: 2_147_483_647 - 65_535)
        XCTAssertEqual(connection.size, 2_147_483_647)
        XCTAssertThrowsError(try connection.increase(by: 1)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.isConnectionError, true)
        }
        var stream = HTTP2FlowWindow(size: 65_535, streamID: 7)
        XCTAssertThrowsError(try stream.increase(by: 2_147_483_647)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.streamID, 7)
        }
    }

    func testSettingsChangeMayMakeAWindowNegative() throws {
        // §6.9.2's example: a sender with 65,535 in flight when the peer lowers the initial
        // window to 16,384 owes 49,151 before it may send again.
        var window = HTTP2FlowWindow(size: 65_535, streamID: 1)
        window.sent(65_535)
        try window.adjust(by: 16_384 - 65_535)
        XCTAssertEqual(window.size, -49_151)
        try window.increase(by: 49_152)
        XCTAssertEqual(window.size, 1)
        var full = HTTP2FlowWindow(size: 2_147_483_647, streamID: 1)
        XCTAssertThrowsError(try full.adjust(by: 1)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.isConnectionError, true)
        }
    }

    func testEventRateCountsPerWindow() {
        var rate = HTTP2EventRate(maximum: 3, windowSeconds: 30)
        let second: Int64 = 1_000_000_000
        XCTAssertFalse(rate.record(now: 0))
        XCTAssertFalse(rate.record(now: 1 * second))
        XCTAssertFalse(rate.record(now: 29 * second))
        XCTAssertTrue(rate.record(now: 29 * second + 1), "a fourth within 30 s")
        XCTAssertFalse(rate.record(now: 30 * second), "a new window")
    }
}
