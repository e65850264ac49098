public import NIOCore

/// Writes HTTP/2 frames (RFC 9113 §4.1, §6) into a buffer: what the connection sends, with
/// no validation of its own (the connection builds only valid frames). Never pads, never
/// sends priority fields.
public enum HTTP2FrameWriter {
    /// The 9-byte frame header, in one buffer operation.
    public static func writeHeader(length: Int, type: HTTP2FrameType, flags: UInt8, streamID: UInt32, to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: HTTP2WireConstants.frameHeaderLength) { out in
            setHeader(length: length, type: type, flags: flags, streamID: streamID, in: out)
        }
    }

    /// The 9-byte frame header at the start of `out` (at least 9 bytes); returns 9.
    @discardableResult
    public static func setHeader(length: Int, type: HTTP2FrameType, flags: UInt8, streamID: UInt32, in out: UnsafeMutableRawBufferPointer) -> Int {
        let id = streamID & 0x7FFF_FFFF
        out[0] = UInt8(truncatingIfNeeded: length >> 16)
        out[1] = UInt8(truncatingIfNeeded: length >> 8)
        out[2] = UInt8(truncatingIfNeeded: length)
        out[3] = type.rawValue
        out[4] = flags
        out[5] = UInt8(truncatingIfNeeded: id >> 24)
        out[6] = UInt8(truncatingIfNeeded: id >> 16)
        out[7] = UInt8(truncatingIfNeeded: id >> 8)
        out[8] = UInt8(truncatingIfNeeded: id)
        return HTTP2WireConstants.frameHeaderLength
    }

    /// One DATA frame; `data` must fit the peer's SETTINGS_MAX_FRAME_SIZE and windows.
    public static func writeData(streamID: UInt32, data: ByteBuffer, endStream: Bool, to buffer: inout ByteBuffer) {
        writeHeader(length: data.readableBytes, type: .data, flags: endStream ? HTTP2FrameFlag.endStream : 0, streamID: streamID, to: &buffer)
        buffer.writeImmutableBuffer(data)
    }

    /// HEADERS carrying `block`, followed by as many CONTINUATION frames as the peer's
    /// `maxFrameSize` needs (§4.3: a field block is sent as one uninterrupted sequence).
    public static func writeHeaders(streamID: UInt32, block: ByteBuffer, endStream: Bool, maxFrameSize: Int, to buffer: inout ByteBuffer) {
        let limit = max(maxFrameSize, 1)
        var rest = block
        let first = min(rest.readableBytes, limit)
        var flags: UInt8 = endStream ? HTTP2FrameFlag.endStream : 0
        if first == rest.readableBytes { flags |= HTTP2FrameFlag.endHeaders }
        writeHeader(length: first, type: .headers, flags: flags, streamID: streamID, to: &buffer)
        if let slice = rest.readSlice(length: first) { buffer.writeImmutableBuffer(slice) }
        while rest.readableBytes > 0 {
            let size = min(rest.readableBytes, limit)
            let last = size == rest.readableBytes
            writeHeader(length: size, type: .continuation, flags: last ? HTTP2FrameFlag.endHeaders : 0, streamID: streamID, to: &buffer)
            if let slice = rest.readSlice(length: size) { buffer.writeImmutableBuffer(slice) }
        }
    }

    public static func writeRSTStream(streamID: UInt32, code: HTTP2WireErrorCode, to buffer: inout ByteBuffer) {
        writeHeader(length: 4, type: .rstStream, flags: 0, streamID: streamID, to: &buffer)
        buffer.writeInteger(code.rawValue)
    }

    public static func writeSettings(_ settings: [HTTP2WireSetting], to buffer: inout ByteBuffer) {
        writeHeader(length: settings.count * 6, type: .settings, flags: 0, streamID: 0, to: &buffer)
        for setting in settings {
            buffer.writeInteger(setting.id)
            buffer.writeInteger(setting.value)
        }
    }

    public static func writeSettingsAck(to buffer: inout ByteBuffer) {
        writeHeader(length: 0, type: .settings, flags: HTTP2FrameFlag.ack, streamID: 0, to: &buffer)
    }

    public static func writePing(opaque: UInt64, ack: Bool, to buffer: inout ByteBuffer) {
        writeHeader(length: 8, type: .ping, flags: ack ? HTTP2FrameFlag.ack : 0, streamID: 0, to: &buffer)
        buffer.writeInteger(opaque)
    }

    public static func writeGoAway(lastStreamID: UInt32, code: HTTP2WireErrorCode, debugData: ByteBuffer?, to buffer: inout ByteBuffer) {
        writeHeader(length: 8 + (debugData?.readableBytes ?? 0), type: .goAway, flags: 0, streamID: 0, to: &buffer)
        buffer.writeInteger(lastStreamID & 0x7FFF_FFFF)
        buffer.writeInteger(code.rawValue)
        if let debugData { buffer.writeImmutableBuffer(debugData) }
    }

    /// `increment` must be 1...2^31-1.
    public static func writeWindowUpdate(streamID: UInt32, increment: Int, to buffer: inout ByteBuffer) {
        writeHeader(length: 4, type: .windowUpdate, flags: 0, streamID: streamID, to: &buffer)
        buffer.writeInteger(UInt32(truncatingIfNeeded: increment) & 0x7FFF_FFFF)
    }
}
