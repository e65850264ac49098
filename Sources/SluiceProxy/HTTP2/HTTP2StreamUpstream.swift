import NIOCore
import NIOHTTP2

/// Where the downstream relay sends an allowed stream: a stream of a pooled h2c connection
/// (`HTTP2UpstreamRelay`) or one HTTP/1.1 exchange (`HTTP2ToHTTP1Upstream`, for ports
/// declared `HTTP`). Confined to the downstream connection's event loop.
protocol HTTP2StreamUpstream: AnyObject {
    /// The address dialled and our end of it, as the access log writes them.
    var remoteText: String { get }
    var localText: String? { get }
    /// Written to since the last flush (kept by the downstream relay).
    var dirty: Bool { get set }
    /// Starts `stream` here with the frames that arrived while connecting.
    func open(_ stream: HTTP2RelayStream, frames: [(HTTP2Frame.FramePayload, Int)])
    /// Passes on a request frame; once it is on its way, `credit` goes back to the client's window.
    func send(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream, credit: Int)
    /// The client's connection took `bytes` of the stream's response.
    func originCreditReturned(_ stream: HTTP2RelayStream, bytes: Int)
    /// The client left the stream: the origin's side is abandoned.
    func reset(_ stream: HTTP2RelayStream, code: HTTP2ErrorCode)
    func flush()
}

extension HTTP2UpstreamRelay: HTTP2StreamUpstream {}
