import NIOCore
import NIOHPACK
import NIOHTTP2
import SluiceCore

/// One HTTP/2 stream carried to an HTTP/1.1 origin (a port declared `HTTP`) over a pooled
/// `UpstreamHTTPHandler` connection, as Envoy's codecs convert: the HEADERS become a request
/// head (`HTTP2ToHTTP1`), DATA the body (chunked when the length is unknown), the origin's
/// head `:status` and headers, its de-chunked body DATA, its end END_STREAM. Trailers are
/// dropped both ways, as Envoy does towards HTTP/1 upstreams. The client's window is reopened
/// only while the origin's connection is writable; the origin's reads are held while more
/// than a stream window of response bytes wait for the client.
final class HTTP2ToHTTP1Upstream: HTTP2StreamUpstream, HTTPUpstreamSink {
    private let downstream: HTTP2DownstreamRelay
    private let upstream: any HTTPUpstream
    private let window: Int
    private let fresh: Bool
    private weak var stream: HTTP2RelayStream?
    var dirty = false
    private var chunked = false
    /// The request is a HEAD: the response has no body, whatever its length says.
    private var toHEAD = false
    /// The response HEADERS carried END_STREAM (no body may follow: HEAD, 204, 304).
    private var endedWithHeaders = false
    private var requestDone = false
    /// The exchange is over here (response ended, failed, or abandoned).
    private var finished = false
    /// Request bytes sent while the origin's connection was not writable: the client's
    /// window gets them back once it is.
    private var heldCredit = 0
    /// Response bytes written to the client and not yet taken by its connection.
    private var inFlight = 0

    init(downstream: HTTP2DownstreamRelay, upstream: any HTTPUpstream, window: Int, fresh: Bool) {
        self.downstream = downstream
        self.upstream = upstream
        self.window = window
        self.fresh = fresh
    }

    var remoteText: String { self.upstream.remoteText }
    var localText: String? { self.upstream.localText }

    // MARK: request, driven by the downstream relay

    func open(_ stream: HTTP2RelayStream, frames: [(HTTP2Frame.FramePayload, Int)]) {
        self.stream = stream
        guard case .headers(let headers)? = frames.first?.0 else { return }
        let fields = headers.headers.map { ($0.name, $0.value) }
        let request: HTTP2ToHTTP1.Request
        do {
            request = try HTTP2ToHTTP1.request(headers: fields, endStream: headers.endStream)
        } catch {
            // The codec has checked the pseudo-headers: not expected, but never sent half-built.
            self.fail(stream, flag: .downstreamProtocolError, reason: "protocol error")
            return
        }
        self.chunked = request.chunked
        self.requestDone = headers.endStream
        self.toHEAD = headers.headers.first(name: ":method") == "HEAD"
        self.upstream.beginExchange(for: self, toHEAD: self.toHEAD, stripChunkFraming: true)
        self.upstream.send(ByteBuffer(string: request.head))
        for (payload, credit) in frames.dropFirst() { self.send(payload, of: stream, credit: credit) }
        if self.fresh { self.upstream.startReading() }
    }

    func send(_ payload: HTTP2Frame.FramePayload, of stream: HTTP2RelayStream, credit: Int) {
        guard !self.finished, !self.requestDone else { return }
        switch payload {
        case .data(let data):
            if case .byteBuffer(let bytes) = data.data, bytes.readableBytes > 0 {
                if self.chunked {
                    self.upstream.send(ByteBuffer(string: HTTP2ToHTTP1.chunkPrefix(size: bytes.readableBytes)))
                    self.upstream.send(bytes)
                    self.upstream.send(ByteBuffer(string: HTTP2ToHTTP1.chunkSuffix))
                } else {
                    self.upstream.send(bytes)
                }
            }
            if data.endStream { self.endRequest() }
        case .headers(let trailers):
            // Request trailers are not carried to an HTTP/1 origin (Envoy's default).
            if trailers.endStream { self.endRequest() }
        default:
            break
        }
        guard credit > 0 else { return }
        if self.upstream.isWritable {
            self.downstream.clientCreditReturned(stream, bytes: credit)
        } else {
            self.heldCredit += credit
        }
    }

    private func endRequest() {
        self.requestDone = true
        if self.chunked { self.upstream.send(ByteBuffer(string: HTTP2ToHTTP1.lastChunk)) }
    }

    func originCreditReturned(_ stream: HTTP2RelayStream, bytes: Int) {
        let wasWritable = self.isWritable
        self.inFlight -= bytes
        if !wasWritable, self.isWritable, !self.finished { self.upstream.resumeReading() }
    }

    func reset(_ stream: HTTP2RelayStream, code: HTTP2ErrorCode) {
        guard !self.finished else { return }
        self.finished = true
        self.upstream.detach()
        self.upstream.close()
    }

    func flush() { self.upstream.flush() }

    // MARK: response, from the HTTP/1 connection

    var isWritable: Bool { self.inFlight < self.window }

    func upstreamResponse(_ part: UpstreamResponsePart, from upstream: any HTTPUpstream) {
        guard upstream === self.upstream, !self.finished, let stream = self.stream else { return }
        switch part {
        case .head(let head):
            // Interim 1xx heads are not passed on (Envoy's default, proxy_100_continue off).
            guard head.status >= 200 else { return }
            let fields = head.fields.map { (head.string($0.name), head.string($0.value)) }
            let converted = HTTP2ToHTTP1.responseHeaders(status: head.status, fields: fields)
            // A response that cannot have a body ends with its HEADERS (RFC 9110 §6.4.1).
            self.endedWithHeaders = self.toHEAD || head.status == 204 || head.status == 304
            let headers = HTTP2Frame.FramePayload.Headers(headers: HPACKHeaders(converted), endStream: self.endedWithHeaders)
            stream.responseHeaders(headers)
            self.downstream.relayResponse(.headers(headers), of: stream, credit: 0)
        case .body(let bytes):
            let count = bytes.readableBytes
            guard count > 0 else { return }
            stream.record.bytesSent &+= UInt64(count)
            self.inFlight += count
            self.downstream.relayResponse(.data(.init(data: .byteBuffer(bytes))), of: stream, credit: count)
        case .end:
            self.finished = true
            stream.responseEnded = true
            self.upstream.responseEnded()
            if !self.endedWithHeaders {
                self.downstream.relayResponse(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)), of: stream, credit: 0)
            }
            if self.requestDone {
                self.upstream.release()
            } else {
                // The origin answered before the request's body ended: its framing is spent.
                self.upstream.notReusable()
                self.upstream.detach()
                self.upstream.close()
                self.downstream.responseEndedBeforeRequest(stream)
            }
        }
    }

    func upstreamReadComplete(from upstream: any HTTPUpstream) {}

    func upstreamBecameWritable(_ upstream: any HTTPUpstream) {
        guard upstream === self.upstream, self.heldCredit > 0, let stream = self.stream else { return }
        let credit = self.heldCredit
        self.heldCredit = 0
        self.downstream.clientCreditReturned(stream, bytes: credit)
    }

    func upstreamProtocolError(_ upstream: any HTTPUpstream, error: HTTP1ParseError) {
        guard upstream === self.upstream, !self.finished, let stream = self.stream else { return }
        self.fail(stream, flag: .upstreamProtocolError, reason: "protocol error")
    }

    func upstreamClosed(_ upstream: any HTTPUpstream) {
        guard upstream === self.upstream, !self.finished, let stream = self.stream else { return }
        self.fail(stream, flag: .upstreamConnectionTermination, reason: "connection termination")
    }

    /// The exchange failed here: 503 before the response started, a reset after (the relay's rule).
    private func fail(_ stream: HTTP2RelayStream, flag: ResponseFlags, reason: String) {
        self.finished = true
        self.upstream.detach()
        self.upstream.close()
        self.downstream.upstreamReset(stream, flag: flag, reason: reason)
    }
}
