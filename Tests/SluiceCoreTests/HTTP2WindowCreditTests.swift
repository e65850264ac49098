import SluiceCore
import XCTest

/// When the frame relay reopens HTTP/2 windows. Expectations follow NIOHTTP2's
/// `InboundWindowManager` (Tests/NIOHTTP2Tests/InboundWindowManagerTests.swift in
/// apple/swift-nio-http2): nothing until half the window is used, then back to the target.
final class HTTP2WindowCreditTests: XCTestCase {
    func testStreamCreditIsReturnedOnceHalfTheWindowWasHandedOn() {
        var credit = HTTP2WindowCredit(window: 65_535)
        XCTAssertNil(credit.handedOn(16_384))
        XCTAssertNil(credit.handedOn(16_383))
        XCTAssertEqual(credit.owed, 32_767)
        // 32,768 of 65,535 is half: everything owed goes back at once.
        XCTAssertEqual(credit.handedOn(1), 32_768)
        XCTAssertEqual(credit.owed, 0)
        XCTAssertNil(credit.handedOn(0))
    }

    func testAWholeWindowInOneFrameIsReturnedWhole() {
        var credit = HTTP2WindowCredit(window: 65_535)
        XCTAssertEqual(credit.handedOn(65_535), 65_535)
        XCTAssertEqual(credit.handedOn(40_000), 40_000)
    }

    func testConnectionWindowIsToppedUpAtHalf() {
        // InboundWindowManagerTests.testNewWindowSizeWhenNewSizeIsAtLeastHalfTarget and ...LessThanOrEqualHalfTarget.
        XCTAssertNil(HTTP2WindowCredit.connectionIncrement(remaining: 65_535, target: 65_535))
        XCTAssertNil(HTTP2WindowCredit.connectionIncrement(remaining: 40_000, target: 65_535))
        XCTAssertNil(HTTP2WindowCredit.connectionIncrement(remaining: 32_768, target: 65_535))
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: 32_767, target: 65_535), 32_768)
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: 0, target: 65_535), 65_535)
        XCTAssertNil(HTTP2WindowCredit.connectionIncrement(remaining: 100_000, target: 65_535))
    }

    func testNIOHTTP2sOwnFixtures() {
        // InboundWindowManagerTests, target 10: at/above target, at least half, at most half.
        for remaining in [10, 11, 6, 9] {
            XCTAssertNil(HTTP2WindowCredit.connectionIncrement(remaining: remaining, target: 10), "\(remaining)")
        }
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: 0, target: 10), 10)
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: 5, target: 10), 5)
    }

    func testANegativeConnectionWindowIsBroughtBackToTheTarget() {
        // A SETTINGS change can drive a window below zero (RFC 9113 §6.9.2).
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: -10, target: 65_535), 65_545)
        XCTAssertEqual(HTTP2WindowCredit.connectionIncrement(remaining: -Int(Int32.max), target: 65_535), Int(Int32.max))
    }

    func testPaddingCountsAgainstTheWindow() {
        // RFC 9113 §6.1: the Pad Length octet and the padding are flow controlled.
        XCTAssertEqual(HTTP2WindowCredit.flowControlledLength(dataBytes: 100, paddingBytes: nil), 100)
        XCTAssertEqual(HTTP2WindowCredit.flowControlledLength(dataBytes: 100, paddingBytes: 0), 101)
        XCTAssertEqual(HTTP2WindowCredit.flowControlledLength(dataBytes: 100, paddingBytes: 20), 121)
    }
}
