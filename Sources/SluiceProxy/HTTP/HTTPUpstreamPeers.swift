import NIOCore
import SluiceCore

// The two HTTP handlers talk through these protocols, not to each other's classes, so each
// is tested alone on an `EmbeddedChannel` with a test double for the other
// (Tests/SluiceProxyTests/HTTPHandlerPeerTests.swift); the loopback tests run the real pair.
// Both are class-bound: a call costs a witness-table lookup, no allocation.

/// What an upstream connection hands the downstream proxy handler.
enum UpstreamResponsePart {
    /// A response head (interim 1xx heads included).
    case head(HTTP1Head)
    /// Body bytes as read (chunk framing included, unless de-chunking).
    case body(ByteBuffer)
    case end
}

/// The downstream handler as its upstream connection sees it: where the response goes. All
/// calls come on the shared event loop; `upstream` says which connection calls (one that was
/// let go of is ignored).
protocol HTTPUpstreamSink: AnyObject {
    /// The downstream can take more response bytes: the upstream holds its reads while not.
    var isWritable: Bool { get }
    func upstreamResponse(_ part: UpstreamResponsePart, from upstream: any HTTPUpstream)
    /// The end of one read from the origin: what was relayed is flushed.
    func upstreamReadComplete(from upstream: any HTTPUpstream)
    /// The upstream can take request bytes again.
    func upstreamBecameWritable(_ upstream: any HTTPUpstream)
    /// The origin's response could not be framed (Envoy's `UPE`).
    func upstreamProtocolError(_ upstream: any HTTPUpstream, error: HTTP1ParseError)
    func upstreamClosed(_ upstream: any HTTPUpstream)
}

/// An upstream HTTP/1.1 connection as the downstream handler drives it: one exchange at a
/// time, request bytes in, response parts out to the sink, kept for reuse while the origin
/// allows.
protocol HTTPUpstream: AnyObject {
    /// What the connection was opened for and with: reused only for the same target and TLS
    /// setting (nil: plaintext), so a reload that changes a DestinationRule's `tls` is not
    /// bypassed by an idle connection made under the old one.
    var target: UpstreamTarget { get }
    var tls: UpstreamTLS? { get }
    /// The address dialled and our end of it, as the access log writes them.
    var remoteText: String { get }
    var localText: String? { get }
    /// Can take request bytes (the downstream holds its reads while not).
    var isWritable: Bool { get }
    /// Open, idle and reusable: can carry the next exchange now.
    var isIdleAndReusable: Bool { get }
    var isReusable: Bool { get }
    /// The response in flight ends when the origin closes (no length, not chunked).
    var isCloseDelimited: Bool { get }

    /// A request is about to be sent: its response goes to `sink`, framed for a HEAD or
    /// not, de-chunked for an HTTP/1.0 app.
    func beginExchange(for sink: any HTTPUpstreamSink, toHEAD: Bool, stripChunkFraming: Bool)
    /// The response in flight was relayed to its end.
    func responseEnded()
    /// The connection cannot carry another exchange.
    func notReusable()
    /// Request bytes, written behind the earlier ones (the last held back for the flush).
    func send(_ bytes: ByteBuffer)
    /// Flushes what `send` wrote, now / at the end of the loop tick.
    func flush()
    func flushAtEndOfTick()
    /// Turns reading on for a fresh connection (dialled with autoRead off).
    func startReading()
    /// The sink can take response bytes again: a read held for it is issued.
    func resumeReading()
    /// The sink is gone: nothing more is passed on.
    func detach()
    /// The downstream lets go of it: kept for reuse when idle and reusable, else closed.
    func release()
    func close()
    /// After a relayed 101: the channel the tunnel continues on and the bytes the origin
    /// sent behind its 101; the sink is cleared. Nil when the connection is gone.
    func takeTunnel() -> (channel: any Channel, bytes: ByteBuffer?)?
    /// Leaves its channel's pipeline (the tunnel's glue took over).
    func leavePipeline()
}

/// Where the downstream handler gets upstream connections.
protocol HTTPUpstreamProvider {
    /// An idle connection to `target` opened with `tls` (nil: plaintext) kept for reuse, if any.
    func idle(for target: UpstreamTarget, tls: UpstreamTLS?) -> (any HTTPUpstream)?
    /// Dials `target` (opening `tls` on it) and installs an upstream on the connection; `completion` runs on
    /// `eventLoop`. An `UpstreamError` is the dial's (a local 503 reply); any other error
    /// means the connection could not be set up (the app's connection is closed). Under a
    /// DestinationRule traffic policy (`cluster`), the endpoint is the one its load balancer
    /// chooses (an idle connection to it reused), with its limits and outlier detection
    /// applied (PooledHTTPUpstreams+Cluster); `UpstreamError.overflow` is a 503 UO.
    func connect(
        target: UpstreamTarget,
        tls: UpstreamTLS?,
        config: ActiveConfig,
        eventLoop: any EventLoop,
        limits: HTTP1Limits,
        cluster: ClusterState?,
        completion: @escaping (Result<any HTTPUpstream, any Error>) -> Void
    )
}

/// The real provider: the event loop's `UpstreamPool`, and `UpstreamHTTPHandler`s on
/// connections dialled by the runtime's `UpstreamConnector`.
struct PooledHTTPUpstreams: HTTPUpstreamProvider {
    let connector: UpstreamConnector

    func idle(for target: UpstreamTarget, tls: UpstreamTLS?) -> (any HTTPUpstream)? {
        UpstreamPool.current.take(target, tls: tls)
    }

    func connect(
        target: UpstreamTarget,
        tls: UpstreamTLS?,
        config: ActiveConfig,
        eventLoop: any EventLoop,
        limits: HTTP1Limits,
        cluster: ClusterState?,
        completion: @escaping (Result<any HTTPUpstream, any Error>) -> Void
    ) {
        if let cluster {
            self.connect(target: target, tls: tls, config: config, eventLoop: eventLoop, limits: limits, in: cluster, completion: completion)
            return
        }
        self.connector.connect(
            target: target,
            gateway: config.gateway,
            tls: tls,
            eventLoop: eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            switch result {
            case .failure(let failure):
                completion(.failure(failure))
            case .success(let connection):
                completion(Self.install(on: connection, target: target, tls: tls, limits: limits, cluster: nil))
            }
        }
    }
}
