import NIOCore
import NIOHTTP2
import SluiceCore

/// One client HTTP/2 stream as the frame relay keeps it: where it is in its life, the
/// upstream stream it is paired with, the window credit owed to each peer, and its
/// access-log record. Confined to the downstream connection's event loop.
final class HTTP2RelayStream {
    enum Phase {
        /// Answered by Sluice (denied, or failed before the response started).
        case answered
        /// Allowed; its frames (each with the window credit it returns once sent) wait for
        /// the upstream connection.
        case connecting([(HTTP2Frame.FramePayload, Int)])
        /// Paired with a stream on `upstream`.
        case forwarding(any HTTP2StreamUpstream)
        /// Over on the upstream side (reset, or the relay has stopped relaying it).
        case done
    }

    let downstreamID: HTTP2StreamID
    /// The client connection's relay: an upstream connection shared by many client
    /// connections hands each stream's frames to its own. Held strongly; the stream leaves
    /// both relays' tables when it closes (or its connection does), which ends the cycle.
    let downstream: HTTP2DownstreamRelay
    var phase = Phase.answered
    /// The paired stream's id at the origin, once its HEADERS went out.
    var upstreamID: HTTP2StreamID?
    var record = AccessLogRecord()
    let start = NIODeadline.now()
    var upstreamSent: NIODeadline?
    var grpc = false
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    var logged = false
    /// Request bytes handed to the origin and not yet returned to the client's window.
    var clientCredit: HTTP2WindowCredit
    /// Response bytes handed to the client and not yet returned to the origin's window.
    var originCredit: HTTP2WindowCredit
    /// The DestinationRule cluster the stream counts against, and the endpoint it went to
    /// (HTTP2DownstreamRelay+Cluster).
    var cluster: ClusterState?
    var endpoint: String?
    /// Where an allowed stream is dialled, kept while it connects so that a connect failure
    /// can be retried (HTTP2DownstreamRelay+Forward).
    struct Dial {
        let target: UpstreamTarget
        let tls: UpstreamTLS?
        let upstreamProtocol: HTTP2UpstreamProtocol
        let config: ActiveConfig
        /// The decision's route, and whether a registry entry matched.
        let routeBox: RouteSelectionBox?
        let registered: Bool

        /// The route's `retries`; Istio's default on a route without them and on a registered
        /// host without a VirtualService (as for HTTP/1); none for passthrough traffic.
        var retryPolicy: RetryPolicy? {
            guard routeBox != nil || registered else { return nil }
            return routeBox?.selection.behaviour.retries ?? RetryPolicy.istioDefault
        }
    }

    var dial: Dial?
    /// Tries so far (connect failures retried under `dial.retryPolicy`).
    var tries = 1
    /// A retry counted against the DestinationRule's `maxRetries`.
    var retryCounted = false
    /// The route's `headers.response`, until the response head has them (HTTP2DownstreamRelay+Routes).
    var responseEdits: HeaderEdits?
    /// The route's timeout, and its timer once the request has ended upstream.
    var routeTimeout: TimeAmount?
    var routeTimer: LoopTimer?

    init(downstreamID: HTTP2StreamID, downstream: HTTP2DownstreamRelay, window: Int) {
        self.downstreamID = downstreamID
        self.downstream = downstream
        self.clientCredit = HTTP2WindowCredit(window: window)
        self.originCredit = HTTP2WindowCredit(window: window)
    }

    /// Whether the stream is paired with `upstream` right now.
    var upstream: (any HTTP2StreamUpstream)? {
        if case .forwarding(let upstream) = self.phase { return upstream }
        return nil
    }

    /// Records the origin's response HEADERS (the first final status, and whether it ends the stream).
    func responseHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        if !self.responseStarted, let status = headers.headers.first(name: ":status").flatMap(Int.init), status >= 200 {
            self.responseStarted = true
            self.record.responseCode = status
            if let sent = self.upstreamSent { self.record.upstreamServiceTime = sent.millisecondsElapsed }
        }
        if headers.endStream { self.responseEnded = true }
    }
}

extension HTTP2Frame.FramePayload.Data {
    /// The window credit relaying this frame returns to its sender once written on: its
    /// flow-controlled length, or nothing when it ends the stream (no more will come).
    var relayCredit: Int {
        self.endStream ? 0 : HTTP2WindowCredit.flowControlledLength(dataBytes: self.data.readableBytes, paddingBytes: self.paddingBytes)
    }
}

extension HTTP2Frame.FramePayload {
    /// The same HEADERS or DATA payload with nothing of the hop it arrived on (priority
    /// refers to the other connection's stream ids; padding is not re-sent).
    var relayed: HTTP2Frame.FramePayload {
        switch self {
        case .headers(let headers) where headers.priorityData != nil || headers.paddingBytes != nil:
            return .headers(.init(headers: headers.headers, endStream: headers.endStream))
        case .data(let data) where data.paddingBytes != nil:
            return .data(.init(data: data.data, endStream: data.endStream))
        default:
            return self
        }
    }
}
