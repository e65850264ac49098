/// The streams of one HTTP/2 connection and their states (RFC 9113 §5.1), seen from our side:
/// which frames the peer may send on which stream, what opens and what closes one, and the
/// SETTINGS_MAX_CONCURRENT_STREAMS bound we announced (§5.1.2).
///
/// Idle streams are those above the highest identifier each side has opened; a stream that
/// ended leaves the table and is closed. Frames the peer sends on a stream we reset are
/// ignored (§5.1 "closed"): the last `recentResetCapacity` such streams are remembered.
public struct HTTP2StreamTable: Sendable {
    /// An active stream's state; closed streams are not in the table.
    public enum State: Equatable, Sendable {
        case open
        /// We sent END_STREAM; the peer may still send.
        case halfClosedLocal
        /// The peer sent END_STREAM; we may still send.
        case halfClosedRemote
    }

    /// What a HEADERS frame from the peer means.
    public enum InboundHeaders: Equatable, Sendable {
        /// A new stream (a request on a server connection).
        case opened
        /// The stream's next field block: a response (or informational one) on a client
        /// connection, or trailers.
        case onOpenStream
        /// A new stream past SETTINGS_MAX_CONCURRENT_STREAMS: answer RST_STREAM REFUSED_STREAM
        /// (§5.1.2; the peer may retry it elsewhere).
        case refused
        /// A stream we reset: drop it without an answer (§5.1).
        case ignored
    }

    /// True when we are the server: the peer opens odd streams, we open none (no push).
    public let isServer: Bool
    /// SETTINGS_MAX_CONCURRENT_STREAMS we announced: streams the peer may have open.
    public var maxConcurrentRemote: Int
    /// SETTINGS_MAX_CONCURRENT_STREAMS the peer announced: streams we may have open.
    public var maxConcurrentLocal: Int = Int.max
    /// How many reset streams are remembered so that late frames on them are ignored.
    public let recentResetCapacity: Int

    private var streams: [UInt32: State] = [:]
    private var recentlyReset: [UInt32] = []
    /// Highest stream identifier the peer opened (or was refused).
    public private(set) var lastRemoteStreamID: UInt32 = 0
    /// Highest stream identifier we opened.
    public private(set) var lastLocalStreamID: UInt32 = 0
    /// Active streams the peer opened, and that we opened.
    public private(set) var remoteActive = 0
    public private(set) var localActive = 0

    public init(isServer: Bool, maxConcurrentRemote: Int, recentResetCapacity: Int = 64) {
        self.isServer = isServer
        self.maxConcurrentRemote = maxConcurrentRemote
        self.recentResetCapacity = recentResetCapacity
    }

    /// The state of `streamID`; nil when idle or closed.
    public func state(of streamID: UInt32) -> State? { streams[streamID] }

    /// The identifier our next stream would take, nil when the connection ran out of them or
    /// the peer's concurrency limit is reached.
    public var nextLocalStreamID: UInt32? {
        guard localActive < maxConcurrentLocal else { return nil }
        let next = lastLocalStreamID == 0 ? (isServer ? 2 : 1) : lastLocalStreamID + 2
        return next <= 0x7FFF_FFFF ? next : nil
    }

    // MARK: - Frames from the peer

    /// HEADERS from the peer on `streamID`.
    public mutating func receivedHeaders(streamID: UInt32, endStream: Bool) throws(HTTP2WireError) -> InboundHeaders {
        if let state = streams[streamID] {
            switch state {
            case .open, .halfClosedLocal:
                if endStream { closeRemote(streamID, state) }
                return .onOpenStream
            case .halfClosedRemote:
                throw HTTP2WireError(.streamClosed, streamID: streamID, "HEADERS after END_STREAM")
            }
        }
        // Only a client opens streams with HEADERS: a server's would be pushed, and push is
        // never enabled (§8.4).
        if isServer, isRemoteInitiated(streamID) {
            if streamID <= lastRemoteStreamID {
                if recentlyReset.contains(streamID) { return .ignored }
                // §5.1.1: a closed stream, or an identifier below one already used.
                throw HTTP2WireError(.streamClosed, "HEADERS on closed stream \(streamID)")
            }
            lastRemoteStreamID = streamID
            guard remoteActive < maxConcurrentRemote else {
                remember(reset: streamID)
                return .refused
            }
            remoteActive += 1
            streams[streamID] = endStream ? .halfClosedRemote : .open
            return .opened
        }
        if !isRemoteInitiated(streamID), streamID <= lastLocalStreamID {
            // One of ours that ended: ignored after our reset, else STREAM_CLOSED (§5.1).
            if recentlyReset.contains(streamID) { return .ignored }
            throw HTTP2WireError(.streamClosed, streamID: streamID, "HEADERS on closed stream \(streamID)")
        }
        // §5.1.1 / §8.4: the peer may not open a stream of our parity (push is disabled).
        throw HTTP2WireError(.protocolError, "HEADERS on stream \(streamID), which the peer may not open")
    }

    /// DATA from the peer: false when it must be dropped (a stream we reset); its bytes still
    /// count against the connection window (§6.9).
    public mutating func receivedData(streamID: UInt32, endStream: Bool) throws(HTTP2WireError) -> Bool {
        guard let state = streams[streamID] else {
            try closedOrIdle(streamID, "DATA")
            return false
        }
        switch state {
        case .open, .halfClosedLocal:
            if endStream { closeRemote(streamID, state) }
            return true
        case .halfClosedRemote:
            throw HTTP2WireError(.streamClosed, streamID: streamID, "DATA after END_STREAM")
        }
    }

    /// RST_STREAM from the peer: true when it closed an active stream.
    public mutating func receivedReset(streamID: UInt32) throws(HTTP2WireError) -> Bool {
        guard streams[streamID] != nil else {
            try closedOrIdle(streamID, "RST_STREAM")
            return false
        }
        remove(streamID)
        return true
    }

    /// WINDOW_UPDATE (or PRIORITY) from the peer on a stream: true when the stream is active.
    public func receivedStreamControl(streamID: UInt32, frame: String) throws(HTTP2WireError) -> Bool {
        if streams[streamID] != nil { return true }
        // PRIORITY may name an idle stream (§6.3); WINDOW_UPDATE may not (§6.9).
        if frame != "PRIORITY" && isIdle(streamID) {
            throw HTTP2WireError(.protocolError, "\(frame) on idle stream \(streamID)")
        }
        return false
    }

    // MARK: - Frames we send

    /// We sent HEADERS on `streamID`: opens our stream (client side) or answers the peer's.
    public mutating func sentHeaders(streamID: UInt32, endStream: Bool) {
        if let state = streams[streamID] {
            if endStream { closeLocal(streamID, state) }
            return
        }
        guard !isRemoteInitiated(streamID), streamID > lastLocalStreamID else { return }
        lastLocalStreamID = streamID
        localActive += 1
        streams[streamID] = endStream ? .halfClosedLocal : .open
    }

    /// We sent DATA on `streamID`.
    public mutating func sentData(streamID: UInt32, endStream: Bool) {
        guard endStream, let state = streams[streamID] else { return }
        closeLocal(streamID, state)
    }

    /// We sent RST_STREAM on `streamID`: it is closed, and late frames on it are ignored.
    public mutating func sentReset(streamID: UInt32) {
        if streams[streamID] != nil { remove(streamID) }
        remember(reset: streamID)
    }

    /// Identifiers of the active streams above `lastStreamID` (what a GOAWAY from the peer
    /// leaves unprocessed, §6.8), ours only.
    public func localStreams(above lastStreamID: UInt32) -> [UInt32] {
        streams.keys.filter { !isRemoteInitiated($0) && $0 > lastStreamID }.sorted()
    }

    // MARK: - Helpers

    private func isRemoteInitiated(_ streamID: UInt32) -> Bool {
        // Clients open odd streams, servers even ones (§5.1.1).
        (streamID & 1 == 1) == isServer
    }

    private func isIdle(_ streamID: UInt32) -> Bool {
        isRemoteInitiated(streamID) ? streamID > lastRemoteStreamID : streamID > lastLocalStreamID
    }

    /// A frame on a stream not in the table: on an idle stream a connection PROTOCOL_ERROR
    /// (§5.1), on one we reset nothing, on any other closed one a stream STREAM_CLOSED.
    private func closedOrIdle(_ streamID: UInt32, _ frame: String) throws(HTTP2WireError) {
        if isIdle(streamID) { throw HTTP2WireError(.protocolError, "\(frame) on idle stream \(streamID)") }
        if recentlyReset.contains(streamID) { return }
        if frame == "RST_STREAM" { return }  // both ends may reset at once: nothing to answer
        throw HTTP2WireError(.streamClosed, streamID: streamID, "\(frame) on closed stream \(streamID)")
    }

    private mutating func closeRemote(_ streamID: UInt32, _ state: State) {
        if state == .halfClosedLocal { remove(streamID) } else { streams[streamID] = .halfClosedRemote }
    }

    private mutating func closeLocal(_ streamID: UInt32, _ state: State) {
        if state == .halfClosedRemote { remove(streamID) } else { streams[streamID] = .halfClosedLocal }
    }

    private mutating func remove(_ streamID: UInt32) {
        guard streams.removeValue(forKey: streamID) != nil else { return }
        if isRemoteInitiated(streamID) { remoteActive -= 1 } else { localActive -= 1 }
    }

    private mutating func remember(reset streamID: UInt32) {
        guard !recentlyReset.contains(streamID) else { return }
        if recentlyReset.count >= recentResetCapacity { recentlyReset.removeFirst() }
        recentlyReset.append(streamID)
    }
}
