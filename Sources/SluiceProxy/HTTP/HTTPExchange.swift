import NIOCore
import SluiceCore

/// One request/response pair on a downstream connection and what its log line needs.
final class HTTPExchange {
    enum Phase {
        /// Denied: the body is discarded, the denial is sent at the end of the request.
        case denied
        /// Waiting for the upstream connection; the request's bytes (head rewritten, body as
        /// read) queue here.
        case connecting([ByteBuffer])
        /// Request bytes stream to the upstream.
        case forwarding
        /// Failed before a response: the error answer has been (or is being) sent.
        case failed
    }

    var phase: Phase
    var record: AccessLogRecord
    let start: NIODeadline
    /// The request's `HTTP/1.x` minor version: responses go back in the same version.
    let requestVersionMinor: Int
    let keepAlive: Bool
    let isHEAD: Bool
    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    var upstreamRequestSent: NIODeadline?
    /// The request asked to switch protocols (WebSocket `Upgrade`); a 101 turns the
    /// connection into a tunnel.
    var upgrade: String?
    /// The upstream answered 101: after its head the connection becomes a raw tunnel.
    var switching = false
    /// An interim (1xx) response head was framed: its end is not the response's end.
    var interimResponse = false
    /// The response to the app is delimited by closing the connection (an HTTP/1.0 app
    /// given a chunked or close-delimited response).
    var closeAfterResponse = false

    init(phase: Phase, record: AccessLogRecord, versionMinor: Int, keepAlive: Bool, isHEAD: Bool) {
        self.phase = phase
        self.record = record
        self.start = .now()
        self.requestVersionMinor = versionMinor
        self.keepAlive = keepAlive
        self.isHEAD = isHEAD
    }

    /// Takes `record` (left as an empty record) rather than copying it: a copy retains each
    /// of its strings and the caller's version is released right after. The head is only read.
    convenience init(phase: Phase, taking record: inout AccessLogRecord, head: borrowing HTTP1Head) {
        self.init(
            phase: phase,
            record: AccessLogRecord(),
            versionMinor: head.versionMinor,
            keepAlive: head.isKeepAlive,
            isHEAD: head.knownMethod == .head
        )
        swap(&self.record, &record)
    }

    var isDone: Bool { self.requestEnded && self.responseEnded }
}
