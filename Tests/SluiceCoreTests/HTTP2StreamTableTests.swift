import SluiceCore
import XCTest

/// Stream states (RFC 9113 §5.1) after h2spec's `http2/5.1`, `5.1.1` and `5.1.2` cases.
final class HTTP2StreamTableTests: XCTestCase {
    func testARequestAndItsResponse() throws {
        var table = HTTP2StreamTable(isServer: true, maxConcurrentRemote: 100)
        XCTAssertEqual(try table.receivedHeaders(streamID: 1, endStream: false), .opened)
        XCTAssertEqual(table.state(of: 1), .open)
        XCTAssertTrue(try table.receivedData(streamID: 1, endStream: true))
        XCTAssertEqual(table.state(of: 1), .halfClosedRemote)
        table.sentHeaders(streamID: 1, endStream: false)
        table.sentData(streamID: 1, endStream: true)
        XCTAssertNil(table.state(of: 1))
        XCTAssertEqual(table.remoteActive, 0)
        // A GET is half-closed from its HEADERS on.
        XCTAssertEqual(try table.receivedHeaders(streamID: 3, endStream: true), .opened)
        XCTAssertEqual(table.state(of: 3), .halfClosedRemote)
    }

    func testFramesAfterEndStreamAreStreamClosed() throws {
        // h2spec 5.1/6 and 5.1/7: DATA / HEADERS in half-closed (remote): stream STREAM_CLOSED.
        var table = HTTP2StreamTable(isServer: true, maxConcurrentRemote: 100)
        _ = try table.receivedHeaders(streamID: 1, endStream: true)
        XCTAssertThrowsError(try table.receivedData(streamID: 1, endStream: false)) { error in
            XCTAssertEqual(error as? HTTP2WireError, HTTP2WireError(.streamClosed, streamID: 1, "DATA after END_STREAM"))
        }
        XCTAssertThrowsError(try table.receivedHeaders(streamID: 1, endStream: true)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.code, .streamClosed)
        }
    }

    func testIdleStreamsAndIdentifierOrder() throws {
        var table = HTTP2StreamTable(isServer: true, maxConcurrentRemote: 100)
        // h2spec 5.1/1, 5.1/2: DATA / RST_STREAM on an idle stream: connection PROTOCOL_ERROR.
        XCTAssertThrowsError(try table.receivedData(streamID: 1, endStream: false)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.isConnectionError, true)
        }
        XCTAssertThrowsError(try table.receivedReset(streamID: 1))
        XCTAssertThrowsError(try table.receivedStreamControl(streamID: 1, frame: "WINDOW_UPDATE"))
        XCTAssertFalse(try table.receivedStreamControl(streamID: 1, frame: "PRIORITY"))
        // h2spec 5.1.1/1: a client may not open an even stream.
        XCTAssertThrowsError(try table.receivedHeaders(streamID: 2, endStream: true)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.code, .protocolError)
        }
        // h2spec 5.1.1/2: a new stream below one already opened.
        XCTAssertEqual(try table.receivedHeaders(streamID: 5, endStream: true), .opened)
        XCTAssertThrowsError(try table.receivedHeaders(streamID: 3, endStream: true)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.isConnectionError, true)
        }
    }

    func testStreamsPastTheLimitAreRefusedAndLateFramesIgnored() throws {
        // h2spec 5.1.2/1: past SETTINGS_MAX_CONCURRENT_STREAMS, RST_STREAM REFUSED_STREAM.
        var table = HTTP2StreamTable(isServer: true, maxConcurrentRemote: 2)
        XCTAssertEqual(try table.receivedHeaders(streamID: 1, endStream: false), .opened)
        XCTAssertEqual(try table.receivedHeaders(streamID: 3, endStream: false), .opened)
        XCTAssertEqual(try table.receivedHeaders(streamID: 5, endStream: false), .refused)
        XCTAssertEqual(table.remoteActive, 2)
        // The refused stream's DATA in flight is dropped, not answered.
        XCTAssertFalse(try table.receivedData(streamID: 5, endStream: true))
        // Once a stream ends, a new one fits.
        XCTAssertTrue(try table.receivedReset(streamID: 1))
        XCTAssertEqual(try table.receivedHeaders(streamID: 7, endStream: false), .opened)
        // A stream we reset: late frames ignored; one that closed otherwise: STREAM_CLOSED.
        table.sentReset(streamID: 3)
        XCTAssertFalse(try table.receivedData(streamID: 3, endStream: false))
        XCTAssertThrowsError(try table.receivedData(streamID: 1, endStream: false)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.streamID, 1)
        }
    }

    func testClientSideStreams() throws {
        var table = HTTP2StreamTable(isServer: false, maxConcurrentRemote: 0)
        table.maxConcurrentLocal = 2
        XCTAssertEqual(table.nextLocalStreamID, 1)
        table.sentHeaders(streamID: 1, endStream: true)
        XCTAssertEqual(table.state(of: 1), .halfClosedLocal)
        XCTAssertEqual(table.nextLocalStreamID, 3)
        table.sentHeaders(streamID: 3, endStream: false)
        XCTAssertNil(table.nextLocalStreamID, "the peer's limit of 2 is reached")
        // The response on 1: HEADERS, DATA END_STREAM: closed.
        XCTAssertEqual(try table.receivedHeaders(streamID: 1, endStream: false), .onOpenStream)
        XCTAssertTrue(try table.receivedData(streamID: 1, endStream: true))
        XCTAssertNil(table.state(of: 1))
        XCTAssertEqual(table.nextLocalStreamID, 5)
        XCTAssertEqual(table.localStreams(above: 1), [3])
        // A server may not open streams towards us (push disabled): a connection error.
        XCTAssertThrowsError(try table.receivedHeaders(streamID: 2, endStream: false)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.isConnectionError, true)
        }
        // HEADERS on our stream 1, which ended: a stream STREAM_CLOSED; after we reset 3, ignored.
        XCTAssertThrowsError(try table.receivedHeaders(streamID: 1, endStream: false)) { error in
            XCTAssertEqual((error as? HTTP2WireError)?.streamID, 1)
        }
        table.sentReset(streamID: 3)
        XCTAssertEqual(try table.receivedHeaders(streamID: 3, endStream: true), .ignored)
    }
}
