public import NIOCore

/// Reads HTTP/2 frames off a connection's byte stream (RFC 9113 §4, §6), after the preface.
///
/// Pure: the caller appends what arrived to a buffer and calls `next(_:)` until it returns nil
/// (a frame is incomplete). Every length, flag, padding and stream-identifier rule of §6 is
/// checked here, so the connection code above sees only well-formed frames; HEADERS and the
/// CONTINUATION frames after it come out as one `.headers` with the whole field block.
///
/// Errors follow §5.4: a connection error (`streamID` 0) ends the connection, and nothing more
/// may be read. A stream error has consumed its frame: the caller resets that stream and may
/// go on reading.
///
/// Hostile input (issue 24 item 3): a frame longer than the SETTINGS_MAX_FRAME_SIZE we
/// announced is refused before its payload is buffered; a field block may span at most
/// `maxContinuationFrames` CONTINUATION frames and `maxFieldBlockBytes` bytes (CONTINUATION
/// flood: ENHANCE_YOUR_CALM), and no other frame may come in the middle of one.
public struct HTTP2FrameReader: Sendable {
    /// SETTINGS_MAX_FRAME_SIZE we announced: the longest payload accepted.
    public var maxFrameSize: Int
    /// CONTINUATION frames one field block may have (HTTP2Limits.maxSequentialContinuationFrames).
    public var maxContinuationFrames: Int
    /// HPACK-encoded bytes one field block may have.
    public var maxFieldBlockBytes: Int

    /// A field block whose END_HEADERS has not come yet.
    private struct OpenBlock: Sendable {
        var streamID: UInt32
        var block: ByteBuffer
        var endStream: Bool
        var priority: HTTP2WirePriority?
        var continuations: Int
    }
    private var open: OpenBlock?

    public init(
        maxFrameSize: Int = HTTP2WireConstants.defaultMaxFrameSize, maxContinuationFrames: Int = 5,
        maxFieldBlockBytes: Int = 64 * 1024
    ) {
        self.maxFrameSize = maxFrameSize
        self.maxContinuationFrames = maxContinuationFrames
        self.maxFieldBlockBytes = maxFieldBlockBytes
    }

    /// True while a field block waits for its CONTINUATION frames.
    public var inFieldBlock: Bool { open != nil }

    /// The next complete frame at the front of `buffer`, consumed; nil when more bytes are
    /// needed (nothing consumed). A CONTINUATION is consumed into the open field block and the
    /// loop goes on, so nil may also follow consumed CONTINUATION frames.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTP2WireError) -> HTTP2WireFrame? {
        while true {
            guard buffer.readableBytes >= HTTP2WireConstants.frameHeaderLength else { return nil }
            let start = buffer.readerIndex
            guard let b0 = buffer.getInteger(at: start, as: UInt8.self),
                  let b12 = buffer.getInteger(at: start + 1, as: UInt16.self),
                  let type = buffer.getInteger(at: start + 3, as: UInt8.self),
                  let flags = buffer.getInteger(at: start + 4, as: UInt8.self),
                  let rawStream = buffer.getInteger(at: start + 5, as: UInt32.self)
            else { return nil }
            let length = Int(b0) << 16 | Int(b12)
            // The reserved bit is ignored on receipt (§4.1).
            let streamID = rawStream & 0x7FFF_FFFF
            let frameType = HTTP2FrameType(rawValue: type)
            // §4.2: too long is FRAME_SIZE_ERROR, and a connection error for the frames that can
            // change connection state; we end the connection for every type (allowed, and no
            // oversized payload is ever buffered).
            guard length <= maxFrameSize else {
                throw HTTP2WireError(.frameSizeError, "\(length)-byte frame over SETTINGS_MAX_FRAME_SIZE \(maxFrameSize)")
            }
            guard buffer.readableBytes >= HTTP2WireConstants.frameHeaderLength + length else { return nil }
            buffer.moveReaderIndex(forwardBy: HTTP2WireConstants.frameHeaderLength)
            // The payload, consumed now: whatever the frame turns out to be, its bytes are gone.
            guard var payload = buffer.readSlice(length: length) else { return nil }

            if let open {
                // §6.10: only CONTINUATION on the same stream may follow an unfinished field block.
                guard frameType == .continuation, streamID == open.streamID else {
                    throw HTTP2WireError(.protocolError, "frame type \(type) inside the field block of stream \(open.streamID)")
                }
                if let frame = try continueBlock(payload, flags: flags) { return frame }
                continue
            }
            guard let frameType else {
                return .unknown(type: type, streamID: streamID)
            }
            switch frameType {
            case .data:
                guard streamID != 0 else { throw HTTP2WireError(.protocolError, "DATA on stream 0") }
                try Self.removePadding(&payload, flags: flags, streamID: streamID)
                return .data(streamID: streamID, data: payload, endStream: flags & HTTP2FrameFlag.endStream != 0,
                             flowControlledLength: length)
            case .headers:
                guard streamID != 0 else { throw HTTP2WireError(.protocolError, "HEADERS on stream 0") }
                try Self.removePadding(&payload, flags: flags, streamID: streamID)
                var priority: HTTP2WirePriority?
                if flags & HTTP2FrameFlag.priority != 0 {
                    guard let read = Self.readPriority(&payload) else {
                        // §6.2: padding that leaves no room for the fields is a PROTOCOL_ERROR.
                        let code: HTTP2WireErrorCode = flags & HTTP2FrameFlag.padded != 0 ? .protocolError : .frameSizeError
                        throw HTTP2WireError(code, "HEADERS too short for its priority fields")
                    }
                    priority = read
                }
                let endStream = flags & HTTP2FrameFlag.endStream != 0
                if flags & HTTP2FrameFlag.endHeaders != 0 {
                    try checkBlockSize(payload.readableBytes, streamID: streamID)
                    try Self.checkSelfDependency(priority, streamID: streamID)
                    return .headers(streamID: streamID, block: payload, endStream: endStream, priority: priority)
                }
                try checkBlockSize(payload.readableBytes, streamID: streamID)
                // Copied: the connection's read buffer is not held while CONTINUATION frames trickle in.
                var block = ByteBufferAllocator().buffer(capacity: payload.readableBytes * 2)
                block.writeImmutableBuffer(payload)
                self.open = OpenBlock(streamID: streamID, block: block, endStream: endStream, priority: priority, continuations: 0)
            case .priority:
                guard streamID != 0 else { throw HTTP2WireError(.protocolError, "PRIORITY on stream 0") }
                guard length == 5, let priority = Self.readPriority(&payload) else {
                    throw HTTP2WireError(.frameSizeError, streamID: streamID, "PRIORITY of \(length) bytes, not 5")
                }
                try Self.checkSelfDependency(priority, streamID: streamID)
                return .priority(streamID: streamID, priority)
            case .rstStream:
                guard streamID != 0 else { throw HTTP2WireError(.protocolError, "RST_STREAM on stream 0") }
                guard length == 4, let code = payload.readInteger(as: UInt32.self) else {
                    throw HTTP2WireError(.frameSizeError, "RST_STREAM of \(length) bytes, not 4")
                }
                return .rstStream(streamID: streamID, code: HTTP2WireErrorCode(rawValue: code))
            case .settings:
                return try Self.settings(&payload, flags: flags, streamID: streamID)
            case .pushPromise:
                // Sluice announces SETTINGS_ENABLE_PUSH 0 on every connection it opens, and a
                // client never pushes (§8.4): PUSH_PROMISE is always a PROTOCOL_ERROR here.
                throw HTTP2WireError(.protocolError, "PUSH_PROMISE with push disabled")
            case .ping:
                guard streamID == 0 else { throw HTTP2WireError(.protocolError, "PING on stream \(streamID)") }
                guard length == 8, let opaque = payload.readInteger(as: UInt64.self) else {
                    throw HTTP2WireError(.frameSizeError, "PING of \(length) bytes, not 8")
                }
                return .ping(ack: flags & HTTP2FrameFlag.ack != 0, opaque: opaque)
            case .goAway:
                guard streamID == 0 else { throw HTTP2WireError(.protocolError, "GOAWAY on stream \(streamID)") }
                guard length >= 8, let last = payload.readInteger(as: UInt32.self), let code = payload.readInteger(as: UInt32.self) else {
                    throw HTTP2WireError(.frameSizeError, "GOAWAY of \(length) bytes, under 8")
                }
                return .goAway(lastStreamID: last & 0x7FFF_FFFF, code: HTTP2WireErrorCode(rawValue: code), debugData: payload)
            case .windowUpdate:
                guard length == 4, let raw = payload.readInteger(as: UInt32.self) else {
                    throw HTTP2WireError(.frameSizeError, "WINDOW_UPDATE of \(length) bytes, not 4")
                }
                let increment = Int(raw & 0x7FFF_FFFF)
                guard increment > 0 else {
                    throw HTTP2WireError(.protocolError, streamID: streamID, "WINDOW_UPDATE with a zero increment")
                }
                return .windowUpdate(streamID: streamID, increment: increment)
            case .continuation:
                throw HTTP2WireError(.protocolError, "CONTINUATION without an open field block on stream \(streamID)")
            }
        }
    }

    /// Adds a CONTINUATION's fragment to the open field block; the whole `.headers` once
    /// END_HEADERS arrives.
    private mutating func continueBlock(_ payload: ByteBuffer, flags: UInt8) throws(HTTP2WireError) -> HTTP2WireFrame? {
        guard var block = self.open else { return nil }
        self.open = nil
        block.continuations += 1
        guard block.continuations <= maxContinuationFrames else {
            throw HTTP2WireError(.enhanceYourCalm, "more than \(maxContinuationFrames) CONTINUATION frames in one field block")
        }
        try checkBlockSize(block.block.readableBytes + payload.readableBytes, streamID: block.streamID)
        block.block.writeImmutableBuffer(payload)
        guard flags & HTTP2FrameFlag.endHeaders != 0 else {
            self.open = block
            return nil
        }
        try Self.checkSelfDependency(block.priority, streamID: block.streamID)
        return .headers(streamID: block.streamID, block: block.block, endStream: block.endStream, priority: block.priority)
    }

    private func checkBlockSize(_ bytes: Int, streamID: UInt32) throws(HTTP2WireError) {
        // A connection error: the HPACK decoder's state would be lost with the skipped block (§4.3).
        guard bytes <= maxFieldBlockBytes else {
            throw HTTP2WireError(.enhanceYourCalm, "field block of stream \(streamID) over \(maxFieldBlockBytes) bytes")
        }
    }

    /// §6.1 / §6.2: the Pad Length octet and the padding off both ends of `payload`. Padding as
    /// long as the payload or longer is a connection PROTOCOL_ERROR.
    private static func removePadding(_ payload: inout ByteBuffer, flags: UInt8, streamID: UInt32) throws(HTTP2WireError) {
        guard flags & HTTP2FrameFlag.padded != 0 else { return }
        guard let padLength = payload.readInteger(as: UInt8.self), Int(padLength) <= payload.readableBytes else {
            throw HTTP2WireError(.protocolError, "padding of stream \(streamID) as long as its frame")
        }
        payload.moveWriterIndex(to: payload.writerIndex - Int(padLength))
    }

    private static func readPriority(_ payload: inout ByteBuffer) -> HTTP2WirePriority? {
        guard let dependency = payload.readInteger(as: UInt32.self), let weight = payload.readInteger(as: UInt8.self) else { return nil }
        return HTTP2WirePriority(exclusive: dependency & 0x8000_0000 != 0, dependency: dependency & 0x7FFF_FFFF, weight: weight)
    }

    /// §5.3.1: a stream cannot depend on itself (a stream PROTOCOL_ERROR).
    private static func checkSelfDependency(_ priority: HTTP2WirePriority?, streamID: UInt32) throws(HTTP2WireError) {
        guard let priority, priority.dependency == streamID else { return }
        throw HTTP2WireError(.protocolError, streamID: streamID, "stream \(streamID) depends on itself")
    }

    /// §6.5: SETTINGS on stream 0, an ACK empty, parameters six bytes each and in range.
    private static func settings(_ payload: inout ByteBuffer, flags: UInt8, streamID: UInt32) throws(HTTP2WireError) -> HTTP2WireFrame {
        guard streamID == 0 else { throw HTTP2WireError(.protocolError, "SETTINGS on stream \(streamID)") }
        let length = payload.readableBytes
        if flags & HTTP2FrameFlag.ack != 0 {
            guard length == 0 else { throw HTTP2WireError(.frameSizeError, "SETTINGS ACK with a \(length)-byte payload") }
            return .settings(ack: true, [])
        }
        guard length % 6 == 0 else { throw HTTP2WireError(.frameSizeError, "SETTINGS of \(length) bytes, not a multiple of 6") }
        var settings: [HTTP2WireSetting] = []
        settings.reserveCapacity(length / 6)
        while let id = payload.readInteger(as: UInt16.self), let value = payload.readInteger(as: UInt32.self) {
            switch id {
            case HTTP2SettingID.enablePush:
                guard value <= 1 else { throw HTTP2WireError(.protocolError, "SETTINGS_ENABLE_PUSH \(value)") }
            case HTTP2SettingID.initialWindowSize:
                guard value <= UInt32(HTTP2WireConstants.maxWindowSize) else {
                    throw HTTP2WireError(.flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE \(value) over 2^31-1")
                }
            case HTTP2SettingID.maxFrameSize:
                guard value >= UInt32(HTTP2WireConstants.defaultMaxFrameSize), value <= UInt32(HTTP2WireConstants.maxAllowedFrameSize) else {
                    throw HTTP2WireError(.protocolError, "SETTINGS_MAX_FRAME_SIZE \(value) outside 2^14...2^24-1")
                }
            case HTTP2SettingID.headerTableSize, HTTP2SettingID.maxConcurrentStreams, HTTP2SettingID.maxHeaderListSize:
                break
            default:
                continue  // unknown: ignored
            }
            settings.append(HTTP2WireSetting(id, value))
        }
        return .settings(ack: false, settings)
    }
}
