/// Bounds an HTTP/2 connection accepts from a client, against hostile input. The values
/// follow Envoy's HTTP/2 defaults where it has one we can apply (its `max_concurrent_streams`
/// default is unbounded; we keep NIOHTTP2's 100, a bound every real client honours).
public struct HTTP2Limits: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we announce; a client that opens more is refused
    /// with RST_STREAM REFUSED_STREAM by the codec (HTTP2WireHandler).
    public var maxConcurrentStreams: Int = 100
    /// SETTINGS_MAX_HEADER_LIST_SIZE we announce, and the HPACK-decoded bound on one header
    /// block: the same 64 KiB as an HTTP/1 head (`HTTP1Limits`).
    public var maxHeaderListSize: Int = 64 * 1024
    /// CONTINUATION frames in a row before the connection is closed (CONTINUATION flood).
    public var maxSequentialContinuationFrames: Int = 5
    /// Streams the client may reset within `resetWindowSeconds` before we send GOAWAY
    /// ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487).
    public var maxResetsPerWindow: Int = 200
    /// The rapid-reset window.
    public var resetWindowSeconds: Int64 = 30
    /// Inbound PING/SETTINGS/PRIORITY frames within `controlWindowSeconds` before GOAWAY
    /// ENHANCE_YOUR_CALM (PING and SETTINGS floods).
    public var maxControlFramesPerWindow: Int = 200
    /// The control-frame window.
    public var controlWindowSeconds: Int64 = 30
    /// Control frames we may queue unsent (PING ACKs, SETTINGS ACKs) while the client does
    /// not read: past this the connection is closed (a flood that never reads its answers).
    public var maxBufferedControlFrames: Int = 1000
    /// Empty DATA frames in a row before the connection is closed (window abuse that costs
    /// us work without moving any byte).
    public var maxSequentialEmptyDataFrames: Int = 1
    /// Per-stream and connection receive window we announce (bytes).
    public var initialWindowSize: Int = 65_535

    /// The defaults.
    public init() {}
}
