public import NIOCore

/// One request/response exchange of the HTTP proxy, as a state machine: where the request's
/// bytes go (the phase), how far request and response are, and what the response does to
/// the connection. Events in (request parts framed, the upstream connected, response parts
/// relayed, a local answer), answers out; the proxy handler holds one per exchange and mutates
/// it in place.
public struct HTTPExchangeStateMachine: Sendable {
    public enum Phase: Sendable, Equatable {
        /// Denied: the body is discarded, the denial is sent at the end of the request.
        case denied
        /// Waiting for the upstream connection; the request's bytes queue here.
        case connecting
        /// Request bytes stream to the upstream.
        case forwarding
        /// Failed before a response: the error answer has been (or is being) sent.
        case failed
    }

    /// Where a request body part goes.
    public enum BodyAction: Sendable, Equatable {
        /// Queued until the upstream is connected.
        case queued
        /// Sent to the upstream now.
        case send
        /// Dropped (denied or failed).
        case discard
    }

    /// What a response head is.
    public enum HeadAction: Sendable, Equatable {
        /// An interim answer (100, 103): not relayed; its end is not the response's.
        case interim
        /// The response: relayed.
        case relay
    }

    @inlinable public var phase: Phase { self._phase }
    @usableFromInline var _phase: Phase
    /// The request's bytes while connecting.
    @usableFromInline var queued: [ByteBuffer] = []
    /// The request asked to keep the connection open.
    public let keepAlive: Bool
    @inlinable public var requestEnded: Bool { self._requestEnded }
    @usableFromInline var _requestEnded = false
    @inlinable public var responseStarted: Bool { self._responseStarted }
    @usableFromInline var _responseStarted = false
    @inlinable public var responseEnded: Bool { self._responseEnded }
    @usableFromInline var _responseEnded = false
    /// The upstream answered 101: after its head the connection becomes a raw tunnel.
    @inlinable public var switching: Bool { self._switching }
    @usableFromInline var _switching = false
    /// An interim (1xx) response head was framed: its end is not the response's end.
    @usableFromInline var interimResponse = false
    /// The response to the app is delimited by closing the connection (an HTTP/1.0 app
    /// given a chunked or close-delimited response).
    @inlinable public var closeAfterResponse: Bool { self._closeAfterResponse }
    @usableFromInline var _closeAfterResponse = false

    public init(phase: Phase, keepAlive: Bool) {
        self._phase = phase
        self.keepAlive = keepAlive
    }

    /// Both the request and the response have ended: the exchange can be logged.
    @inlinable public var isDone: Bool { self._requestEnded && self._responseEnded }

    /// The response ends the connection (the request did not keep it alive, or the response
    /// is delimited by the close).
    @inlinable public var closesConnection: Bool { !self.keepAlive || self._closeAfterResponse }

    // MARK: request side

    /// Dialling the upstream; `first` (the rewritten head, if any) queues first.
    public mutating func startConnecting(with first: ByteBuffer?) {
        self._phase = .connecting
        self.queued = first.map { [$0] } ?? []
    }

    /// A request body part was framed.
    @inlinable
    public mutating func requestBody(_ body: ByteBuffer) -> BodyAction {
        switch self._phase {
        case .connecting:
            self.queued.append(body)
            return .queued
        case .forwarding:
            return .send
        case .denied, .failed:
            return .discard
        }
    }

    @inlinable
    public mutating func requestEnd() {
        self._requestEnded = true
    }

    /// The upstream is connected: the exchange forwards from now on. The queued bytes to
    /// send, or nil when it no longer waits for the connection (it failed or timed out).
    public mutating func connected() -> [ByteBuffer]? {
        guard self._phase == .connecting else { return nil }
        self._phase = .forwarding
        defer { self.queued = [] }
        return self.queued
    }

    /// Failed before a response: what is left of the request is discarded.
    public mutating func failed() {
        self._phase = .failed
        self.queued = []
    }

    // MARK: response side

    /// A response head with `status` was framed.
    @inlinable
    public mutating func responseHead(status: Int) -> HeadAction {
        if status / 100 == 1 && status != 101 {
            self.interimResponse = true
            return .interim
        }
        self._responseStarted = true
        return .relay
    }

    /// The response's end is the connection's close (de-chunked or close-delimited).
    @inlinable
    public mutating func responseDelimitedByClose() {
        self._closeAfterResponse = true
    }

    /// The origin switched protocols (101): the head is the whole response.
    public mutating func switchingProtocols() {
        self._switching = true
    }

    /// The end of a response was framed: false when it ended an interim response only.
    @inlinable
    public mutating func responseEndFramed() -> Bool {
        if self.interimResponse {
            self.interimResponse = false
            return false
        }
        self._responseEnded = true
        return true
    }

    /// The response is over without its end (cut mid-body, or a 101 relayed whole).
    public mutating func responseCut() {
        self._responseEnded = true
    }

    /// A request that cannot go on (bad bytes from the app): nothing more of it is read.
    public mutating func requestAbandoned() {
        self._requestEnded = true
    }

    /// A CONNECT tunnel was established: its 200 is the response's start.
    public mutating func tunnelEstablished() {
        self._responseStarted = true
    }

    /// The proxy answered by itself; `close`: the connection closes after the answer (what is
    /// left of the request is not read).
    public mutating func answeredLocally(close: Bool) {
        self._responseStarted = true
        self._responseEnded = true
        if close { self._requestEnded = true }
    }
}
