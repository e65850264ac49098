/// Which side of an HTTP/1 exchange a message is: the start line and the framing rules differ.
public enum HTTP1MessageKind: Sendable {
    case request, response
}

/// Bounds on what the framer buffers for one head (and one trailer section).
public struct HTTP1Limits: Sendable {
    /// The whole head, start line through the final CRLF CRLF; also caps a chunked body's trailer section.
    public var maxHeadBytes: Int
    /// Field lines in a head (and in a trailer section).
    public var maxFields: Int

    public init(maxHeadBytes: Int = 65_536, maxFields: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxFields = maxFields
    }
}

/// Why a message was refused. Each case maps to what the proxy answers.
public enum HTTP1ParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The head (or trailer section) exceeds `HTTP1Limits.maxHeadBytes`: 431.
    case headTooLarge
    /// More field lines than `HTTP1Limits.maxFields`: 431.
    case tooManyFields
    /// A framing or syntax violation: 400. The string is a short reason for logs ("obs-fold").
    case malformed(String)
    /// The input closed before the message was complete.
    case truncated

    public var description: String {
        switch self {
        case .headTooLarge: "head too large"
        case .tooManyFields: "too many header fields"
        case .malformed(let reason): "malformed HTTP/1 message: \(reason)"
        case .truncated: "HTTP/1 message truncated"
        }
    }
}
