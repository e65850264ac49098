import NIOHTTP2
import XCTest

@testable import SluiceProxy

/// The relays act on NIOHTTP2's user events by their dynamic type: each kind is recognised
/// with its fields, and anything else is passed on.
final class HTTP2RelayEventTests: XCTestCase {
    func testEachEventKindIsRecognisedWithItsFields() {
        let window: Any = NIOHTTP2WindowUpdatedEvent(streamID: HTTP2StreamID(3), inboundWindowSize: 100, outboundWindowSize: 7)
        guard case .windowUpdated(let update) = HTTP2RelayEvent(window) else { return XCTFail("window update not recognised") }
        XCTAssertEqual(update.streamID, HTTP2StreamID(3))
        XCTAssertEqual(update.inboundWindowSize, 100)

        let closed: Any = StreamClosedEvent(streamID: HTTP2StreamID(5), reason: .cancel)
        guard case .streamClosed(let close) = HTTP2RelayEvent(closed) else { return XCTFail("stream closed not recognised") }
        XCTAssertEqual(close.streamID, HTTP2StreamID(5))
        XCTAssertEqual(close.reason, .cancel)

        let created: Any = NIOHTTP2StreamCreatedEvent(streamID: HTTP2StreamID(7), localInitialWindowSize: nil, remoteInitialWindowSize: nil)
        guard case .streamCreated = HTTP2RelayEvent(created) else { return XCTFail("stream created not recognised") }
    }

    func testOtherEventsArePassedOn() {
        for event: Any in [NIOHTTP2BulkStreamWindowChangeEvent(delta: 10), "idle", 42] {
            guard case .other = HTTP2RelayEvent(event) else { return XCTFail("\(event) taken as a relay event") }
        }
    }
}
