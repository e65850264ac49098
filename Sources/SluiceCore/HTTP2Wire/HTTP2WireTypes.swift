public import NIOCore

/// HTTP/2 frame types (RFC 9113 §6). Types outside this list are extension frames, which a
/// receiver ignores (§5.5).
public enum HTTP2FrameType: UInt8, Sendable {
    case data = 0x0
    case headers = 0x1
    case priority = 0x2
    case rstStream = 0x3
    case settings = 0x4
    case pushPromise = 0x5
    case ping = 0x6
    case goAway = 0x7
    case windowUpdate = 0x8
    case continuation = 0x9
}

/// Frame flags (RFC 9113 §6): the same bit means different things for different types.
public enum HTTP2FrameFlag {
    /// DATA and HEADERS: the last frame the sender sends on the stream.
    public static let endStream: UInt8 = 0x1
    /// SETTINGS and PING: an acknowledgement.
    public static let ack: UInt8 = 0x1
    /// HEADERS, PUSH_PROMISE and CONTINUATION: the field block ends in this frame.
    public static let endHeaders: UInt8 = 0x4
    /// DATA, HEADERS and PUSH_PROMISE: a Pad Length octet and padding are present.
    public static let padded: UInt8 = 0x8
    /// HEADERS: the deprecated priority fields (§6.2) are present.
    public static let priority: UInt8 = 0x20
}

/// An HTTP/2 error code (RFC 9113 §7), carried by RST_STREAM and GOAWAY.
public struct HTTP2WireErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = Self(rawValue: 0x0)
    public static let protocolError = Self(rawValue: 0x1)
    public static let internalError = Self(rawValue: 0x2)
    public static let flowControlError = Self(rawValue: 0x3)
    public static let settingsTimeout = Self(rawValue: 0x4)
    public static let streamClosed = Self(rawValue: 0x5)
    public static let frameSizeError = Self(rawValue: 0x6)
    public static let refusedStream = Self(rawValue: 0x7)
    public static let cancel = Self(rawValue: 0x8)
    public static let compressionError = Self(rawValue: 0x9)
    public static let connectError = Self(rawValue: 0xa)
    public static let enhanceYourCalm = Self(rawValue: 0xb)
    public static let inadequateSecurity = Self(rawValue: 0xc)
    public static let http11Required = Self(rawValue: 0xd)

    public var description: String {
        let names = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
                     "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
                     "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
        return rawValue < names.count ? names[Int(rawValue)] : "0x\(String(rawValue, radix: 16))"
    }
}

/// What a peer did wrong, and how RFC 9113 §5.4 says to answer: a connection error (stream 0)
/// is answered with GOAWAY carrying `code` and the connection closed; a stream error with
/// RST_STREAM `code` on `streamID`, and the connection goes on.
public struct HTTP2WireError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: HTTP2WireErrorCode
    /// 0 for a connection error.
    public var streamID: UInt32
    /// What was wrong, for the log.
    public var reason: String

    public init(_ code: HTTP2WireErrorCode, streamID: UInt32 = 0, _ reason: String) {
        self.code = code
        self.streamID = streamID
        self.reason = reason
    }

    /// True when the whole connection must end (GOAWAY), false for one stream (RST_STREAM).
    public var isConnectionError: Bool { streamID == 0 }

    public var description: String {
        isConnectionError ? "connection error \(code): \(reason)" : "stream \(streamID) error \(code): \(reason)"
    }
}

/// The deprecated priority fields of HEADERS and PRIORITY (RFC 9113 §5.3.2, §6.3): parsed so
/// the frame is read correctly, otherwise ignored as RFC 9113 allows.
public struct HTTP2WirePriority: Equatable, Sendable {
    public var exclusive: Bool
    public var dependency: UInt32
    /// The weight octet (the weight minus one).
    public var weight: UInt8

    public init(exclusive: Bool, dependency: UInt32, weight: UInt8) {
        self.exclusive = exclusive
        self.dependency = dependency
        self.weight = weight
    }
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
public enum HTTP2SettingID {
    public static let headerTableSize: UInt16 = 0x1
    public static let enablePush: UInt16 = 0x2
    public static let maxConcurrentStreams: UInt16 = 0x3
    public static let initialWindowSize: UInt16 = 0x4
    public static let maxFrameSize: UInt16 = 0x5
    public static let maxHeaderListSize: UInt16 = 0x6
}

/// One SETTINGS parameter as sent.
public struct HTTP2WireSetting: Equatable, Sendable {
    public var id: UInt16
    public var value: UInt32

    public init(_ id: UInt16, _ value: UInt32) {
        self.id = id
        self.value = value
    }
}

/// One frame as read, its payload parsed; HEADERS already joined with its CONTINUATION frames.
public enum HTTP2WireFrame: Equatable, Sendable {
    /// `data` without padding; `flowControlledLength` is what it counts against the windows
    /// (the whole payload, padding and its length octet included: §6.1).
    case data(streamID: UInt32, data: ByteBuffer, endStream: Bool, flowControlledLength: Int)
    /// A complete field block (HPACK-encoded), padding removed.
    case headers(streamID: UInt32, block: ByteBuffer, endStream: Bool, priority: HTTP2WirePriority?)
    case priority(streamID: UInt32, HTTP2WirePriority)
    case rstStream(streamID: UInt32, code: HTTP2WireErrorCode)
    /// Parameters validated (§6.5.2); unknown ones dropped (§6.5.2: "MUST ignore").
    case settings(ack: Bool, [HTTP2WireSetting])
    case ping(ack: Bool, opaque: UInt64)
    case goAway(lastStreamID: UInt32, code: HTTP2WireErrorCode, debugData: ByteBuffer)
    case windowUpdate(streamID: UInt32, increment: Int)
    /// An extension frame type, ignored (§5.5).
    case unknown(type: UInt8, streamID: UInt32)
}

/// RFC 9113 constants.
public enum HTTP2WireConstants {
    /// The frame header: length (24), type (8), flags (8), R + stream identifier (32).
    public static let frameHeaderLength = 9
    /// SETTINGS_MAX_FRAME_SIZE's initial value and its floor (§6.5.2).
    public static let defaultMaxFrameSize = 16_384
    /// SETTINGS_MAX_FRAME_SIZE's ceiling: 2^24 - 1.
    public static let maxAllowedFrameSize = 16_777_215
    /// The largest flow-control window: 2^31 - 1 (§6.9.1).
    public static let maxWindowSize = 2_147_483_647
    /// SETTINGS_INITIAL_WINDOW_SIZE's initial value.
    public static let defaultInitialWindowSize = 65_535
}
