import NIOCore
import NIOHTTP1
import SluiceCore

/// One request/response pair on a downstream connection and what its log line needs.
final class HTTPExchange {
    enum Phase {
        /// Denied: the body is discarded, the denial is sent at the end of the request.
        case denied
        /// Waiting for the upstream connection; request parts queue here.
        case connecting([HTTPClientRequestPart])
        /// Request parts stream to the upstream.
        case forwarding
        /// Failed before a response: the error answer has been (or is being) sent.
        case failed
    }

    var phase: Phase
    var record: AccessLogRecord
    let decision: Decision
    let start: NIODeadline
    let requestVersion: HTTPVersion
    let keepAlive: Bool
    let isHEAD: Bool
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    var upstreamRequestSent: NIODeadline?
    var upstreamKeepAlive = true
    /// The request asked to switch protocols (WebSocket `Upgrade`); a 101 turns the
    /// connection into a tunnel.
    var upgrade: String?
    /// The upstream answered 101: after its end the connection becomes a raw tunnel.
    var switching = false
    /// No request head was read (parse error, slowloris): the answer bypasses the HTTP
    /// codec, whose pipelining state machine only allows a response to a request.
    var withoutRequest = false

    init(phase: Phase, record: AccessLogRecord, decision: Decision, head: HTTPRequestHead) {
        self.phase = phase
        self.record = record
        self.decision = decision
        self.start = .now()
        self.requestVersion = head.version
        self.keepAlive = head.isKeepAlive
        self.isHEAD = head.method == .HEAD
    }

    var isDone: Bool { self.requestEnded && self.responseEnded }
}
