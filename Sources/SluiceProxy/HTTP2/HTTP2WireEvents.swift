import NIOHTTP2

/// What `HTTP2WireHandler` tells the relay besides the frames it reads: called directly, not
/// as user events boxed in `Any` and cast back by the relay (a pipeline walk and a dynamic cast
/// per stream, ~3k instructions per h2c request in callgrind).
protocol HTTP2WireEvents: AnyObject {
    /// The stream ended: END_STREAM both ways, a reset by either side, or past the peer's
    /// GOAWAY (`reason` `.refusedStream`). `reason` is nil for an orderly end.
    func streamClosed(_ streamID: HTTP2StreamID, reason: HTTP2ErrorCode?)

    /// The connection's inbound window is down to `remaining`, half the announced window or
    /// less: the relay tops it up (`HTTP2WindowCredit.connectionIncrement`).
    func connectionWindowLow(remaining: Int)
}
