/// One pass over a decoded HTTP/2 field block (RFC 9113 §8.2, §8.3), field by field as the
/// HPACK decoder yields them: what NIOHTTP2's header-block validation checks, done once per
/// inbound block. A block that fails is malformed: a stream PROTOCOL_ERROR (§8.1.1).
///
/// - names are lowercase tokens (§8.2.1: uppercase is malformed), values carry no NUL, CR or
///   LF, pseudo-header values none of SP, a control byte or DEL (as NIOHTTP2: `:path` becomes an
///   HTTP/1.1 request line towards an HTTP/1.1 origin);
/// - no connection-specific field (`connection`, `keep-alive`, `proxy-connection`,
///   `transfer-encoding`, `upgrade`), and `te` only as `trailers` (§8.2.2);
/// - pseudo-header fields first, each at most once, only those of the block's kind: a
///   request's `:method`, `:scheme`, `:authority`, `:path` (`:path` and `:scheme` required
///   but for CONNECT, which needs `:authority` and has neither), a response's `:status`
///   (three digits), none in trailers (§8.3);
/// - every `content-length` the same decimal number (§8.1.1), returned for the body check.
public struct HTTP2HeaderBlockCheck: Sendable {
    public enum Kind: Equatable, Sendable {
        case request
        case response
        case trailers
    }

    public let kind: Kind
    private var regularSeen = false
    private var method: Bool = false
    private var isConnect = false
    private var scheme = false
    private var path = false
    private var authority = false
    private var hasStatus = false
    /// A response's `:status`.
    public private(set) var statusCode: Int?
    /// The block's `content-length`, when it has one.
    public private(set) var contentLength: Int?

    public init(kind: Kind) { self.kind = kind }

    private static func fail(_ reason: String) -> HTTP2WireError {
        // The stream is filled in by the caller.
        HTTP2WireError(.protocolError, streamID: 1, reason)
    }

    /// The next field of the block.
    public mutating func field(name: String, value: String) throws(HTTP2WireError) {
        let utf8 = name.utf8
        guard let first = utf8.first else { throw Self.fail("empty field name") }
        if first == UInt8(ascii: ":") {
            guard !regularSeen else { throw Self.fail("pseudo-header \(name) after a regular field") }
            try pseudo(name, value)
            return
        }
        regularSeen = true
        guard Self.isLowercaseToken(name) else { throw Self.fail("field name \(name) is not a lowercase token") }
        try Self.checkValue(value, name)
        switch utf8.count {
        case 2 where name == "te":
            guard value == "trailers" else { throw Self.fail("te: \(value)") }
        case 7 where name == "upgrade", 10 where name == "connection" || name == "keep-alive",
             16 where name == "proxy-connection", 17 where name == "transfer-encoding":
            throw Self.fail("connection-specific field \(name)")
        case 14 where name == "content-length":
            guard let length = Self.decimal(value) else { throw Self.fail("content-length: \(value)") }
            if let contentLength, contentLength != length { throw Self.fail("content-length \(contentLength) and \(length)") }
            contentLength = length
        default:
            break
        }
    }

    /// The block ended: the pseudo-headers its kind requires are there.
    public func finish() throws(HTTP2WireError) {
        switch kind {
        case .request:
            guard method else { throw Self.fail("request without :method") }
            if isConnect {
                guard authority, !scheme, !path else { throw Self.fail("CONNECT needs :authority and no :scheme or :path") }
            } else {
                guard scheme, path else { throw Self.fail("request without :scheme or :path") }
            }
        case .response:
            guard hasStatus else { throw Self.fail("response without :status") }
        case .trailers:
            break
        }
    }

    private mutating func pseudo(_ name: String, _ value: String) throws(HTTP2WireError) {
        switch (kind, name) {
        case (.request, ":method"):
            guard !method, !value.isEmpty else { throw Self.fail("duplicate or empty :method") }
            method = true
            isConnect = value == "CONNECT"
        case (.request, ":scheme"):
            guard !scheme, !value.isEmpty else { throw Self.fail("duplicate or empty :scheme") }
            scheme = true
        case (.request, ":path"):
            guard !path, !value.isEmpty else { throw Self.fail("duplicate or empty :path") }
            path = true
        case (.request, ":authority"):
            guard !authority else { throw Self.fail("duplicate :authority") }
            authority = true
        case (.response, ":status"):
            guard !hasStatus, value.utf8.count == 3, let code = Self.decimal(value) else { throw Self.fail(":status \(value)") }
            hasStatus = true
            statusCode = code
        default:
            throw Self.fail("pseudo-header \(name) not allowed here")
        }
        // No pseudo-header's grammar admits SP, a control byte or DEL (a token, a scheme,
        // host[:port], a request-target, 3DIGIT), and `:path` becomes an HTTP/1.1 request line
        // when the origin speaks HTTP/1.1: a bare SP there would split it (request smuggling).
        var bytes = value
        if bytes.withUTF8({ $0.contains { $0 <= 0x20 || $0 == 0x7F } }) {
            throw Self.fail("value of \(name) has a space or a control byte")
        }
    }

    /// §8.2.1: no NUL, CR or LF (what NIOHTTP2 checks; surrounding whitespace passes as there).
    private static func checkValue(_ value: String, _ name: String) throws(HTTP2WireError) {
        var value = value
        if value.withUTF8(hasNULCROrLF) { throw fail("value of \(name) has a NUL, CR or LF") }
    }

    /// Eight bytes at a time: a word with no byte under 0x0E (the usual case) is passed whole.
    private static func hasNULCROrLF(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let isBad = { (byte: UInt8) in byte == 0 || byte == 0x0A || byte == 0x0D }
        guard let base = bytes.baseAddress else { return false }
        let raw = UnsafeRawPointer(base)
        var index = 0
        while index + 8 <= bytes.count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // Nonzero when some byte is below 0x0E (exact for bytes under 0x80, the ones that matter).
            if (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0 {
                for byte in bytes[index..<(index + 8)] where isBad(byte) { return true }
            }
            index += 8
        }
        for byte in bytes[index...] where isBad(byte) { return true }
        return false
    }

    /// RFC 9110 §5.6.2 tchar, uppercase letters excluded: a bit per ASCII byte.
    private static let tokenBitsLow: UInt64 = 0x3ff6cfa00000000
    private static let tokenBitsHigh: UInt64 = 0x57ffffffc0000000

    private static func isLowercaseToken(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            bytes.allSatisfy { byte in
                byte < 64 ? tokenBitsLow >> UInt64(byte) & 1 == 1 : byte < 128 && tokenBitsHigh >> UInt64(byte - 64) & 1 == 1
            }
        }
    }

    private static func decimal(_ text: String) -> Int? {
        var result = 0
        guard !text.isEmpty, text.utf8.count <= 18 else { return nil }
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            result = result * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return result
    }
}
