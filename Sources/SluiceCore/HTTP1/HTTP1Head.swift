public import NIOCore

/// A parsed HTTP/1.x request or response head: the raw bytes plus byte ranges into them.
///
/// Nothing is decoded while parsing: names, values and the start line's parts are `Range<Int>`
/// offsets into `bytes`' readable bytes, and the fields the proxy decides on (framing,
/// connection management, Host, …) are extracted in the same single pass.
public struct HTTP1Head: Sendable {
    /// Exactly the head: start line through the final CRLF CRLF (a slice of the input, not a copy).
    public var bytes: ByteBuffer
    public var kind: HTTP1MessageKind
    /// `x` in `HTTP/1.x`: 0 or 1.
    public var versionMinor: Int
    /// Request method (empty for responses).
    public var method: Range<Int>
    /// Request target (empty for responses).
    public var target: Range<Int>
    /// Response status code, 100...999 (0 for requests).
    public var status: Int
    /// Response reason phrase, possibly empty (empty for requests).
    public var reason: Range<Int>
    /// Every field line, in order.
    public var fields: [HTTP1Field]
    /// The Host field's value (requests only; a second Host field is refused).
    public var host: Range<Int>?
    /// The validated Content-Length (identical repeated fields are accepted, differing ones refused).
    public var contentLength: Int64?
    /// Transfer-Encoding is present and its final coding is `chunked`.
    public var transferEncodingChunked: Bool
    /// A Transfer-Encoding field is present.
    public var hasTransferEncoding: Bool
    /// Connection lists `close`.
    public var connectionClose: Bool
    /// Connection lists `keep-alive`.
    public var connectionKeepAlive: Bool
    /// Connection lists `upgrade`.
    public var connectionUpgrade: Bool
    /// The first Upgrade field's value.
    public var upgrade: Range<Int>?
    /// An Expect field is `100-continue`.
    public var expectContinue: Bool
    /// An `x-request-id` field is present.
    public var hasRequestID: Bool
    /// The first User-Agent field's value.
    public var userAgent: Range<Int>?
    /// The first `x-forwarded-for` field's value (the proxy joins several if it must).
    public var forwardedFor: Range<Int>?
    /// The request's method when it is one of the common ones, recognised once while parsing
    /// (`methodIs` compares bytes on every call).
    public var knownMethod: HTTP1Method = .other

    /// Parses a complete head: `bytes` must hold exactly the start line through the final
    /// CRLF CRLF (what `HTTP1Framer` hands over). Throws on any violation of RFC 9112's syntax
    /// and of the framing rules that guard against request smuggling (see `HTTP1Framer`).
    public init(parsing bytes: ByteBuffer, kind: HTTP1MessageKind, limits: HTTP1Limits = HTTP1Limits()) throws(HTTP1ParseError) {
        guard bytes.readableBytes <= limits.maxHeadBytes else { throw .headTooLarge }
        // Parsed into a local and moved into `self` at the end: handing `self` itself to the
        // closure copied the whole head (its buffer and field array retained) on every parse.
        var head = HTTP1Head(unparsed: bytes, kind: kind)
        var failure: HTTP1ParseError?
        bytes.withUnsafeReadableBytes { raw in
            do throws(HTTP1ParseError) {
                try HTTP1HeadParser.parse(raw, into: &head, limits: limits)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        self = consume head
    }

    /// A head with nothing parsed yet.
    private init(unparsed bytes: ByteBuffer, kind: HTTP1MessageKind) {
        self.bytes = bytes
        self.kind = kind
        self.versionMinor = 1
        self.method = 0..<0
        self.target = 0..<0
        self.status = 0
        self.reason = 0..<0
        self.fields = []
        self.host = nil
        self.contentLength = nil
        self.transferEncodingChunked = false
        self.hasTransferEncoding = false
        self.connectionClose = false
        self.connectionKeepAlive = false
        self.connectionUpgrade = false
        self.upgrade = nil
        self.expectContinue = false
        self.hasRequestID = false
        self.userAgent = nil
        self.forwardedFor = nil
    }

    /// Whether the connection stays open after this message: HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive` (and never with Transfer-Encoding, RFC 9112 §6.1).
    public var isKeepAlive: Bool {
        if connectionClose { return false }
        if versionMinor >= 1 { return true }
        return connectionKeepAlive && !hasTransferEncoding
    }

    /// The bytes at `range` decoded as UTF-8 (invalid sequences repaired): for logs and errors.
    public func string(_ range: Range<Int>) -> String {
        let range = range.clamped(to: 0..<bytes.readableBytes)
        return bytes.getString(at: bytes.readerIndex + range.lowerBound, length: range.count) ?? ""
    }

    /// The request method as a `String`: the common ones as literals (no allocation or UTF-8
    /// check on every request), any other as read.
    public var methodString: String {
        switch knownMethod {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .patch: return "PATCH"
        case .options: return "OPTIONS"
        case .connect: return "CONNECT"
        case .other: return string(method)
        }
    }

    /// The method is exactly `ascii` (case-sensitive, as methods are): `methodIs("HEAD")`.
    public func methodIs(_ ascii: StaticString) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            ascii.withUTF8Buffer { expected in
                HTTP1Bytes.equal(raw, method, expected, caseInsensitive: false)
            }
        }
    }

    /// The field's name equals `lowercasedASCII`, ignoring ASCII case.
    public func nameEquals(_ field: HTTP1Field, _ lowercasedASCII: StaticString) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            lowercasedASCII.withUTF8Buffer { expected in
                HTTP1Bytes.equal(raw, field.name, expected, caseInsensitive: true)
            }
        }
    }

    /// The value of the first field named `lowercasedName` (ASCII case ignored), if any.
    public func firstValue(_ lowercasedName: StaticString) -> Range<Int>? {
        bytes.withUnsafeReadableBytes { raw in
            lowercasedName.withUTF8Buffer { expected in
                for field in fields where HTTP1Bytes.equal(raw, field.name, expected, caseInsensitive: true) {
                    return field.value
                }
                return nil
            }
        }
    }

    /// Appends the bytes at `range` (clamped to the head) to `out`: copies a line or a value
    /// into the forwarded head without building a `String`.
    public func writeBytes(_ range: Range<Int>, to out: inout ByteBuffer) {
        let range = range.clamped(to: 0..<bytes.readableBytes)
        bytes.withUnsafeReadableBytes { raw in
            _ = out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[range]))
        }
    }

    /// Each field's whole line (see `HTTP1Field.line`). Allocates an array: prefer `fields[i].line`.
    public var fieldLines: [Range<Int>] {
        fields.map(\.line)
    }
}

// MARK: - Parser

/// The single pass over a complete head: validates every byte and fills in an `HTTP1Head`.
enum HTTP1HeadParser {
    typealias B = HTTP1Bytes

    /// State carried between field lines that the head itself does not keep.
    private struct Scratch {
        var chunkedCodings = 0
    }

    static func parse(_ raw: UnsafeRawBufferPointer, into head: inout HTTP1Head, limits: HTTP1Limits) throws(HTTP1ParseError) {
        let n = raw.count
        guard n >= 4, raw[n - 4] == B.cr, raw[n - 3] == B.lf, raw[n - 2] == B.cr, raw[n - 1] == B.lf else {
            throw .malformed("head not terminated by CRLF CRLF")
        }
        var i: Int
        switch head.kind {
        case .request: i = try parseRequestLine(raw, into: &head)
        case .response: i = try parseStatusLine(raw, into: &head)
        }
        head.fields.reserveCapacity(16)
        var scratch = Scratch()
        while true {
            // i < n holds: every line ends in CRLF and the head ends in an empty line.
            let first = raw[i]
            if first == B.cr {
                guard i + 2 == n else { throw .malformed("empty line inside head") }
                break
            }
            if B.isWhitespace(first) { throw .malformed("obs-fold") }
            let lineStart = i
            while B.isTchar(raw[i]) { i += 1 }
            let nameEnd = i
            guard raw[i] == B.colon else {
                throw .malformed(B.isWhitespace(raw[i]) ? "whitespace before colon" : "invalid field name")
            }
            guard nameEnd > lineStart else { throw .malformed("empty field name") }
            i += 1
            while B.isWhitespace(raw[i]) { i += 1 }
            let valueStart = i
            // Whole words of plain value bytes first; the byte loop takes the rest (a tab, the
            // CR, or a byte to refuse), then trailing whitespace is trimmed off the value.
            i = B.plainValueEnd(raw, from: i)
            while true {
                let byte = raw[i]
                if byte > B.sp {
                    guard byte != 0x7F else { throw .malformed("invalid character in field value") }
                    i += 1
                } else if B.isWhitespace(byte) {
                    i += 1
                } else if byte == B.cr {
                    break
                } else {
                    throw .malformed("invalid character in field value")
                }
            }
            var valueEnd = i
            while valueEnd > valueStart, B.isWhitespace(raw[valueEnd - 1]) { valueEnd -= 1 }
            // raw[i] is CR; the head's last byte is LF, so i + 1 < n.
            guard raw[i + 1] == B.lf else { throw .malformed("CR without LF") }
            guard head.fields.count < limits.maxFields else { throw .tooManyFields }
            let field = HTTP1Field(name: lineStart..<nameEnd, value: valueStart..<valueEnd, line: lineStart..<i)
            head.fields.append(field)
            try note(field, raw, into: &head, scratch: &scratch)
            i += 2
        }
        try checkFraming(&head, scratch)
    }

    // MARK: Start lines

    /// request-line = method SP request-target SP HTTP-version CRLF; returns where the fields start.
    private static func parseRequestLine(_ raw: UnsafeRawBufferPointer, into head: inout HTTP1Head) throws(HTTP1ParseError) -> Int {
        var i = 0
        while B.isTchar(raw[i]) { i += 1 }
        guard i > 0 else { throw .malformed(raw[0] == B.cr ? "empty request line" : "invalid method") }
        guard raw[i] == B.sp else { throw .malformed("invalid method") }
        head.method = 0..<i
        head.knownMethod = HTTP1Method(raw, length: i)
        i += 1
        let targetStart = i
        while raw[i] &- 0x21 < 0x5E { i += 1 }  // 0x21...0x7E
        guard i > targetStart, raw[i] == B.sp else { throw .malformed("invalid request target") }
        head.target = targetStart..<i
        i += 1
        guard i + 10 <= raw.count, let minor = version(raw, at: i) else { throw .malformed("unsupported HTTP version") }
        head.versionMinor = minor
        i += 8
        guard raw[i] == B.cr, raw[i + 1] == B.lf else { throw .malformed("invalid request line") }
        return i + 2
    }

    /// status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF, and `HTTP/1.1 200` CRLF.
    private static func parseStatusLine(_ raw: UnsafeRawBufferPointer, into head: inout HTTP1Head) throws(HTTP1ParseError) -> Int {
        guard raw.count >= 14, let minor = version(raw, at: 0) else { throw .malformed("unsupported HTTP version") }
        head.versionMinor = minor
        let d0 = raw[9], d1 = raw[10], d2 = raw[11]
        guard raw[8] == B.sp, d0 &- 0x31 < 9, B.isDigit(d1), B.isDigit(d2) else { throw .malformed("invalid status line") }
        head.status = Int(d0 - 0x30) * 100 + Int(d1 - 0x30) * 10 + Int(d2 - 0x30)
        var i = 12
        if raw[i] == B.sp {
            i += 1
            let reasonStart = i
            while B.isFieldContent(raw[i]) { i += 1 }
            head.reason = reasonStart..<i
        } else {
            head.reason = i..<i
        }
        guard raw[i] == B.cr, raw[i + 1] == B.lf else { throw .malformed("invalid status line") }
        return i + 2
    }

    /// `HTTP/1.0` or `HTTP/1.1` at `i` (8 bytes, checked by the caller): the minor version.
    private static func version(_ raw: UnsafeRawBufferPointer, at i: Int) -> Int? {
        guard raw[i] == 0x48, raw[i + 1] == 0x54, raw[i + 2] == 0x54, raw[i + 3] == 0x50,  // HTTP
              raw[i + 4] == 0x2F, raw[i + 5] == 0x31, raw[i + 6] == 0x2E  // /1.
        else { return nil }
        switch raw[i + 7] {
        case 0x30: return 0
        case 0x31: return 1
        default: return nil
        }
    }

    // MARK: Fields the proxy decides on

    private static func note(
        _ field: HTTP1Field,
        _ raw: UnsafeRawBufferPointer,
        into head: inout HTTP1Head,
        scratch: inout Scratch
    ) throws(HTTP1ParseError) {
        let name = field.name
        let value = field.value
        // Dispatch on length first: most fields are none of these and cost one switch.
        switch name.count {
        case 4:
            if head.kind == .request, B.equalFolded(raw, name, "host") {
                guard head.host == nil else { throw .malformed("duplicate Host") }
                head.host = value
            }
        case 6:
            if B.equalFolded(raw, name, "expect"), B.equalFolded(raw, value, "100-continue") {
                head.expectContinue = true
            }
        case 7:
            if head.upgrade == nil, B.equalFolded(raw, name, "upgrade") {
                head.upgrade = value
            }
        case 10:
            if B.equalFolded(raw, name, "connection") {
                noteConnection(raw, value, into: &head)
            } else if head.userAgent == nil, B.equalFolded(raw, name, "user-agent") {
                head.userAgent = value
            }
        case 12:
            if B.equalFolded(raw, name, "x-request-id") {
                head.hasRequestID = true
            }
        case 14:
            if B.equalFolded(raw, name, "content-length") {
                let length = try contentLength(raw, value)
                if let previous = head.contentLength, previous != length {
                    throw .malformed("differing Content-Length")
                }
                head.contentLength = length
            }
        case 15:
            if head.forwardedFor == nil, B.equalFolded(raw, name, "x-forwarded-for") {
                head.forwardedFor = value
            }
        case 17:
            if B.equalFolded(raw, name, "transfer-encoding") {
                try noteTransferEncoding(raw, value, into: &head, scratch: &scratch)
            }
        default:
            break
        }
    }

    /// Content-Length = 1*DIGIT, at most 18 digits (fits Int64): no sign, no inner space, no list.
    private static func contentLength(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>) throws(HTTP1ParseError) -> Int64 {
        guard !value.isEmpty, value.count <= 18 else { throw .malformed("Content-Length") }
        var length: Int64 = 0
        for i in value {
            let byte = raw[i]
            guard B.isDigit(byte) else { throw .malformed("Content-Length") }
            length = length * 10 + Int64(byte - 0x30)
        }
        return length
    }

    /// Calls `body` with each element of a comma-separated list, OWS trimmed, empty elements skipped
    /// (RFC 9110 §5.6.1).
    @inline(__always)
    private static func forEachElement<Failure: Error>(
        _ raw: UnsafeRawBufferPointer,
        _ value: Range<Int>,
        _ body: (Range<Int>) throws(Failure) -> Void
    ) throws(Failure) {
        var i = value.lowerBound
        let end = value.upperBound
        while i < end {
            while i < end, B.isWhitespace(raw[i]) { i += 1 }
            let start = i
            while i < end, raw[i] != B.comma { i += 1 }
            var stop = i
            while stop > start, B.isWhitespace(raw[stop - 1]) { stop -= 1 }
            if stop > start { try body(start..<stop) }
            i += 1
        }
    }

    private static func noteConnection(_ raw: UnsafeRawBufferPointer, _ value: Range<Int>, into head: inout HTTP1Head) {
        forEachElement(raw, value) { element in
            if B.equalFolded(raw, element, "close") {
                head.connectionClose = true
            } else if B.equalFolded(raw, element, "keep-alive") {
                head.connectionKeepAlive = true
            } else if B.equalFolded(raw, element, "upgrade") {
                head.connectionUpgrade = true
            }
        }
    }

    /// Transfer-Encoding = #transfer-coding; several fields form one list. Records whether the
    /// final coding is chunked; a coding that is not a token, or `chunked` with parameters, is refused.
    private static func noteTransferEncoding(
        _ raw: UnsafeRawBufferPointer,
        _ value: Range<Int>,
        into head: inout HTTP1Head,
        scratch: inout Scratch
    ) throws(HTTP1ParseError) {
        head.hasTransferEncoding = true
        try forEachElement(raw, value) { element throws(HTTP1ParseError) in
            var i = element.lowerBound
            while i < element.upperBound, B.isTchar(raw[i]) { i += 1 }
            let coding = element.lowerBound..<i
            guard !coding.isEmpty else { throw .malformed("Transfer-Encoding") }
            let isChunked = B.equalFolded(raw, coding, "chunked")
            if i < element.upperBound {
                // Only parameters may follow the coding name: OWS ";" ...
                while i < element.upperBound, B.isWhitespace(raw[i]) { i += 1 }
                guard !isChunked, i < element.upperBound, raw[i] == B.semicolon else {
                    throw .malformed("Transfer-Encoding")
                }
            }
            if isChunked { scratch.chunkedCodings += 1 }
            head.transferEncodingChunked = isChunked
        }
    }

    /// The framing rules of RFC 9112 §6.1 and §6.3 that are decidable from the head alone.
    private static func checkFraming(_ head: inout HTTP1Head, _ scratch: Scratch) throws(HTTP1ParseError) {
        guard head.hasTransferEncoding else { return }
        if scratch.chunkedCodings > 1 { throw .malformed("chunked applied twice") }
        // Both present is the classic smuggling vector; refused for responses too, as llhttp does.
        if head.contentLength != nil { throw .malformed("Content-Length and Transfer-Encoding") }
        if head.kind == .request {
            if head.versionMinor == 0 { throw .malformed("Transfer-Encoding in HTTP/1.0 request") }
            if !head.transferEncodingChunked { throw .malformed("Transfer-Encoding") }
        }
    }
}
