/// One HTTP/2 flow-control window (RFC 9113 §6.9), a stream's or the connection's, seen from
/// one side: an inbound window (what we advertised and the peer may still send) or an
/// outbound one (what the peer advertised and we may still send).
///
/// A window may go negative when SETTINGS_INITIAL_WINDOW_SIZE shrinks (§6.9.2); it may never
/// exceed 2^31 - 1.
public struct HTTP2FlowWindow: Equatable, Sendable {
    /// Bytes that may still be sent; negative after a SETTINGS reduction.
    public private(set) var size: Int
    /// 0 for the connection's window, else the stream's: where a violation is a stream error.
    public let streamID: UInt32

    public init(size: Int, streamID: UInt32) {
        self.size = size
        self.streamID = streamID
    }

    /// Inbound: the peer sent a flow-controlled frame of `bytes`. More than the window allows
    /// is a FLOW_CONTROL_ERROR (§6.9.1), of the stream or the connection.
    public mutating func received(_ bytes: Int) throws(HTTP2WireError) {
        guard bytes <= size else {
            throw HTTP2WireError(.flowControlError, streamID: streamID, "\(bytes) bytes sent into a window of \(size)")
        }
        size -= bytes
    }

    /// Outbound: we sent `bytes` (at most `size`, which the caller checked).
    public mutating func sent(_ bytes: Int) {
        size -= bytes
    }

    /// WINDOW_UPDATE `increment` (from the peer for an outbound window, ours for an inbound
    /// one). Past 2^31 - 1 is a FLOW_CONTROL_ERROR (§6.9.1): RST_STREAM for a stream, GOAWAY
    /// for the connection.
    public mutating func increase(by increment: Int) throws(HTTP2WireError) {
        guard increment <= HTTP2WireConstants.maxWindowSize - size else {
            throw HTTP2WireError(.flowControlError, streamID: streamID, "window of \(size) increased by \(increment) past 2^31-1")
        }
        size += increment
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (new minus old): every stream window
    /// moves by it (§6.9.2). Past 2^31 - 1 is a connection FLOW_CONTROL_ERROR.
    public mutating func adjust(by delta: Int) throws(HTTP2WireError) {
        guard size + delta <= HTTP2WireConstants.maxWindowSize else {
            throw HTTP2WireError(.flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE change takes stream \(streamID)'s window past 2^31-1")
        }
        size += delta
    }
}

/// Counts events of one kind (client RST_STREAMs, control frames) in consecutive windows of
/// time, the clock given by the caller: past `maximum` in one window the connection is told to
/// stop (GOAWAY ENHANCE_YOUR_CALM), as NIOHTTP2's and Envoy's flood limits do. Rapid reset
/// (CVE-2023-44487) and SETTINGS/PING floods are bounded with it.
public struct HTTP2EventRate: Equatable, Sendable {
    /// Events allowed in one window.
    public let maximum: Int
    /// The window's length, nanoseconds.
    public let windowNanoseconds: Int64
    private var windowStart: Int64?
    private var count = 0

    public init(maximum: Int, windowSeconds: Int64) {
        self.maximum = maximum
        self.windowNanoseconds = max(windowSeconds, 1) * 1_000_000_000
    }

    /// One event at `now` (monotonic nanoseconds). True when it is one too many.
    public mutating func record(now: Int64) -> Bool {
        if let start = windowStart, now - start < windowNanoseconds {
            count += 1
        } else {
            windowStart = now
            count = 1
        }
        return count > maximum
    }
}
