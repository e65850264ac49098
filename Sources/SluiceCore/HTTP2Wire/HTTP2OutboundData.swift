public import NIOCore

/// DATA the connection has to send, held until the peer's flow-control windows allow it
/// (RFC 9113 §6.9): each stream's window and the connection's, and the peer's
/// SETTINGS_MAX_FRAME_SIZE per frame. Streams with waiting bytes take turns, so one large body
/// does not hold the connection window from the others.
public struct HTTP2OutboundData: Sendable {
    /// One DATA frame ready to write.
    public struct Frame: Equatable, Sendable {
        public var streamID: UInt32
        public var data: ByteBuffer
        public var endStream: Bool

        public init(streamID: UInt32, data: ByteBuffer, endStream: Bool) {
            self.streamID = streamID
            self.data = data
            self.endStream = endStream
        }
    }

    private struct Waiting: Sendable {
        var data: ByteBuffer
        var endStream: Bool
    }

    /// The peer's SETTINGS_MAX_FRAME_SIZE.
    public var maxFrameSize: Int = HTTP2WireConstants.defaultMaxFrameSize
    /// The connection's send window.
    public private(set) var connection = HTTP2FlowWindow(size: HTTP2WireConstants.defaultInitialWindowSize, streamID: 0)
    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE: new streams' send windows.
    public private(set) var initialWindowSize = HTTP2WireConstants.defaultInitialWindowSize
    /// Bytes waiting, all streams.
    public private(set) var bufferedBytes = 0

    private var windows: [UInt32: HTTP2FlowWindow] = [:]
    private var waiting: [UInt32: [Waiting]] = [:]
    /// Streams with waiting bytes, in turn order.
    private var turns: [UInt32] = []

    public init() {}

    /// The stream's send window, nil when it is not open for sending.
    public func window(of streamID: UInt32) -> Int? { windows[streamID]?.size }

    /// True while DATA of `streamID` waits for window.
    public func isWaiting(_ streamID: UInt32) -> Bool { waiting[streamID] != nil }

    /// A stream we may send on (opened by either side).
    public mutating func open(streamID: UInt32) {
        if windows[streamID] == nil { windows[streamID] = HTTP2FlowWindow(size: initialWindowSize, streamID: streamID) }
    }

    /// The stream ended or was reset: what waited for it is dropped. Returns the bytes dropped.
    @discardableResult
    public mutating func close(streamID: UInt32) -> Int {
        windows[streamID] = nil
        guard let dropped = waiting.removeValue(forKey: streamID) else { return 0 }
        turns.removeAll { $0 == streamID }
        let bytes = dropped.reduce(0) { $0 + $1.data.readableBytes }
        bufferedBytes -= bytes
        return bytes
    }

    /// Queues `data` for `streamID` (open), END_STREAM after it when `endStream`.
    public mutating func enqueue(streamID: UInt32, data: ByteBuffer, endStream: Bool) {
        // Nothing to send for an empty frame without END_STREAM (and it would wait forever).
        guard windows[streamID] != nil, data.readableBytes > 0 || endStream else { return }
        if waiting[streamID] == nil { turns.append(streamID) }
        waiting[streamID, default: []].append(Waiting(data: data, endStream: endStream))
        bufferedBytes += data.readableBytes
    }

    /// WINDOW_UPDATE from the peer (stream 0: the connection). Overflow is its
    /// FLOW_CONTROL_ERROR; an update for a stream we no longer send on is ignored.
    public mutating func windowUpdate(streamID: UInt32, increment: Int) throws(HTTP2WireError) {
        if streamID == 0 {
            try connection.increase(by: increment)
        } else {
            try windows[streamID]?.increase(by: increment)
        }
    }

    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE: every open stream's window moves by the change (§6.9.2).
    public mutating func setInitialWindowSize(_ size: Int) throws(HTTP2WireError) {
        let delta = size - initialWindowSize
        initialWindowSize = size
        for id in windows.keys { try windows[id]?.adjust(by: delta) }
    }

    /// The frames the windows allow now, in turn order, at most `maxFrameSize` bytes each;
    /// their bytes are taken off the windows. An empty END_STREAM frame needs no window.
    public mutating func nextFrames() -> [Frame] {
        var frames: [Frame] = []
        var progress = true
        while progress, !turns.isEmpty {
            progress = false
            for streamID in turns {
                guard var queue = waiting[streamID], var first = queue.first, var window = windows[streamID] else { continue }
                let allowed = min(first.data.readableBytes, maxFrameSize, max(window.size, 0), max(connection.size, 0))
                let isWhole = allowed == first.data.readableBytes
                guard allowed > 0 || (isWhole && first.endStream) else { continue }
                guard let slice = first.data.readSlice(length: allowed) else { continue }
                window.sent(allowed)
                connection.sent(allowed)
                bufferedBytes -= allowed
                windows[streamID] = window
                frames.append(Frame(streamID: streamID, data: slice, endStream: isWhole && first.endStream))
                if isWhole { queue.removeFirst() } else { queue[0] = first }
                waiting[streamID] = queue.isEmpty ? nil : queue
                progress = true
            }
            turns.removeAll { waiting[$0] == nil }
        }
        return frames
    }
}
