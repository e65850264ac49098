public import NIOCore

/// How access-log lines are written: `accessLog.format` in `sluice.yaml`.
public enum AccessLogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line with the ASM/Envoy default field set (the default).
    case json
    /// Envoy's default text format (`[%START_TIME%] "%REQ(:METHOD)% ..."`).
    case text
}

/// One access-log entry: an HTTP request, or a TLS/TCP connection, with Envoy's field meanings.
///
/// Filled in incrementally as the request or connection goes (every field has a default), then
/// encoded once with `appendJSON(to:)` / `appendText(to:)`. Absent values stay nil and are
/// written as JSON `null` or Envoy's `-`.
public struct AccessLogRecord: Sendable, Equatable {
    /// A request id as the record keeps it.
    public enum RequestIDValue: Sendable, Equatable {
        /// From the request's `x-request-id` header.
        case text(String)
        /// Made up by the proxy.
        case generated(GeneratedRequestID)
    }

    /// Request (HTTP) or downstream connection (TCP) start, in milliseconds since the Unix epoch.
    public var startTime: Int64 = 0
    /// HTTP method; nil for TLS/TCP.
    public var method: String?
    /// HTTP path (the original path, as Envoy's `X-ENVOY-ORIGINAL-PATH?:PATH`); nil for TLS/TCP.
    public var path: String?
    /// `HTTP/1.1`, `HTTP/1.0`, ...; nil for TLS/TCP.
    public var `protocol`: String?
    /// HTTP status sent downstream; 0 for TLS/TCP and for connections closed without a response.
    public var responseCode: Int = 0
    /// What went wrong or was special (`NR` for a denial, `UF` for a failed connect, ...).
    public var responseFlags: ResponseFlags = []
    /// Body bytes (HTTP) or connection bytes (TCP) received from downstream.
    public var bytesReceived: UInt64 = 0
    /// Body bytes (HTTP) or connection bytes (TCP) sent downstream.
    public var bytesSent: UInt64 = 0
    /// Milliseconds from start to the last byte out.
    public var duration: Int64 = 0
    /// Milliseconds the upstream took to answer (Envoy's `x-envoy-upstream-service-time`); nil when none.
    public var upstreamServiceTime: Int64?
    /// The request's `X-Forwarded-For` header.
    public var xForwardedFor: String?
    /// The request's `User-Agent` header.
    public var userAgent: String?
    /// The request's `X-Request-Id` header (or the id the proxy generated for it), as text.
    public var requestId: String? {
        get {
            switch requestID {
            case .text(let text): return text
            case .generated(let id): return id.text
            case nil: return nil
            }
        }
        set { requestID = newValue.map { .text($0) } }
    }
    /// The request id as kept: the header's text, or a generated id written out only when the
    /// line is.
    public var requestID: RequestIDValue?
    /// The request's `:authority` / `Host`.
    public var authority: String?
    /// The upstream `ip:port` dialed.
    public var upstreamHost: String?
    /// `outbound|80||aliyun.com`, `PassthroughCluster` or `BlackHoleCluster`.
    public var upstreamCluster: String?
    /// Local `ip:port` of the upstream connection.
    public var upstreamLocalAddress: String?
    /// The original destination `ip:port` the client dialed.
    public var downstreamLocalAddress: String?
    /// The client's `ip:port`.
    public var downstreamRemoteAddress: String?
    /// The SNI of a TLS connection.
    public var requestedServerName: String?
    /// `block_all`, `allow_any`, or the matched route's name.
    public var routeName: String?
    /// Why connecting to the upstream failed, when it did.
    public var upstreamTransportFailureReason: String?
    /// Envoy's `%RESPONSE_CODE_DETAILS%` where Sluice sets one (Istio's default JSON log has
    /// the field): `rbac_access_denied_matched_policy[…]` for an AuthorizationPolicy denial.
    public var responseCodeDetails: String?
    /// Envoy's `%DOWNSTREAM_PEER_URI_SAN%`: the URI SAN of the caller's verified client
    /// certificate (its SPIFFE ID, `spiffe://cluster.local/ns/default/sa/sleep`) on a gateway
    /// listener that terminates mutual TLS; nil (JSON `null`) without one.
    public var downstreamPeerURISAN: String?
    /// The downstream connection was mutual TLS (a client certificate was verified): Istio's
    /// `connection_security_policy="mutual_tls"`. Not a log field; for the metrics.
    public var downstreamMutualTLS = false
    /// Trace id, when the request carried one.
    public var traceId: String?
    /// Istio's policy status; kept for field-set compatibility with ASM.
    public var istioPolicyStatus: String?

    /// An empty record, to be filled in as the request goes. (Separate from the memberwise
    /// initialiser below: that one, called with every argument defaulted, copied the whole
    /// record on the way out — measurable once per request.)
    public init() {}

    /// Creates a record; every field defaults to "absent" so callers fill what they know.
    public init(
        startTime: Int64 = 0,
        method: String? = nil,
        path: String? = nil,
        protocol: String? = nil,
        responseCode: Int = 0,
        responseFlags: ResponseFlags = [],
        bytesReceived: UInt64 = 0,
        bytesSent: UInt64 = 0,
        duration: Int64 = 0,
        upstreamServiceTime: Int64? = nil,
        xForwardedFor: String? = nil,
        userAgent: String? = nil,
        requestId: String? = nil,
        authority: String? = nil,
        upstreamHost: String? = nil,
        upstreamCluster: String? = nil,
        upstreamLocalAddress: String? = nil,
        downstreamLocalAddress: String? = nil,
        downstreamRemoteAddress: String? = nil,
        requestedServerName: String? = nil,
        routeName: String? = nil,
        upstreamTransportFailureReason: String? = nil,
        traceId: String? = nil,
        istioPolicyStatus: String? = nil
    ) {
        self.startTime = startTime
        self.method = method
        self.path = path
        self.protocol = `protocol`
        self.responseCode = responseCode
        self.responseFlags = responseFlags
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.duration = duration
        self.upstreamServiceTime = upstreamServiceTime
        self.xForwardedFor = xForwardedFor
        self.userAgent = userAgent
        self.requestId = requestId
        self.authority = authority
        self.upstreamHost = upstreamHost
        self.upstreamCluster = upstreamCluster
        self.upstreamLocalAddress = upstreamLocalAddress
        self.downstreamLocalAddress = downstreamLocalAddress
        self.downstreamRemoteAddress = downstreamRemoteAddress
        self.requestedServerName = requestedServerName
        self.routeName = routeName
        self.upstreamTransportFailureReason = upstreamTransportFailureReason
        self.traceId = traceId
        self.istioPolicyStatus = istioPolicyStatus
    }

    /// Appends one complete log line (ending in `\n`) in `format`.
    public func appendLine(format: AccessLogFormat, to buffer: inout ByteBuffer) {
        var timestamps = RFC3339.SecondCache()
        appendLine(format: format, to: &buffer, timestamps: &timestamps)
    }

    /// The same, for a writer of many lines: `timestamps` keeps the formatted second.
    public func appendLine(format: AccessLogFormat, to buffer: inout ByteBuffer, timestamps: inout RFC3339.SecondCache) {
        switch format {
        case .json:
            appendJSONLine(to: &buffer, timestamps: &timestamps)
        case .text:
            appendText(to: &buffer, timestamps: &timestamps)
        }
    }

    /// One complete log line (ending in `\n`) in `format`.
    public func line(format: AccessLogFormat) -> String {
        switch format {
        case .json: jsonLine()
        case .text: textLine()
        }
    }
}

// MARK: - Escaping

/// JSON and text escaping of log values, through the writer the encoders reserve a line's
/// worst case with (`BoundedWriter`).
extension BoundedWriter {
    /// Worst-case output size of a string value: 6 bytes per input byte (`\u00XX`), plus room
    /// for the quotes or `null`.
    static func escapedBound(_ value: String?) -> Int {
        (value?.utf8.count ?? 0) * 6 + 4
    }

    /// Writes `string` with JSON string escaping, without the surrounding quotes.
    ///
    /// `"` and `\` are escaped, control characters become `\n`, `\r`, `\t`, `\b`, `\f` or
    /// `\u00XX`, and DEL, U+2028 and U+2029 are escaped too so a log line can neither be split
    /// nor break a JavaScript consumer. Swift strings are always valid UTF-8 (invalid input was
    /// already replaced with U+FFFD when the String was made), so the output is valid JSON.
    mutating func writeEscaped(_ string: String) {
        // Native and small strings are contiguous UTF-8 and are read in place; only a bridged
        // string (none on Linux) takes the copying path.
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { writeEscaped(utf8: UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = string
            copy.withUTF8 { writeEscaped(utf8: UnsafeRawBufferPointer($0)) }
        }
    }

    private mutating func writeEscaped(utf8: UnsafeRawBufferPointer) {
        // Nearly every value is plain printable ASCII: find that out eight bytes at a time and
        // copy the whole value at once.
        let plain = Self.plainPrefixLength(utf8)
        if plain == utf8.count {
            write(bytes: utf8)
            return
        }
        // Copy runs of safe bytes in one go, escaping the rest.
        var runStart = 0
        var index = plain
        let end = utf8.count
        while index < end {
            let byte = utf8[index]
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
                continue
            }
            var width = 1
            let escape: StaticString?
            switch byte {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case 0x0A: escape = "\\n"
            case 0x0D: escape = "\\r"
            case 0x09: escape = "\\t"
            case 0x08: escape = "\\b"
            case 0x0C: escape = "\\f"
            case 0x00..<0x20, 0x7F: escape = nil
            case 0xE2 where index + 2 < end && utf8[index + 1] == 0x80 && (utf8[index + 2] == 0xA8 || utf8[index + 2] == 0xA9):
                escape = utf8[index + 2] == 0xA8 ? "\\u2028" : "\\u2029"
                width = 3
            default:
                // Any other non-ASCII byte is part of a valid multi-byte character: copy it.
                index += 1
                continue
            }
            write(bytes: UnsafeRawBufferPointer(rebasing: utf8[runStart..<index]))
            if let escape {
                write(escape)
            } else {
                write("\\u00")
                write(Self.hexDigit(byte >> 4))
                write(Self.hexDigit(byte & 0x0F))
            }
            index += width
            runStart = index
        }
        write(bytes: UnsafeRawBufferPointer(rebasing: utf8[runStart..<end]))
    }

    /// Length of the longest prefix of `utf8` made of 8-byte words that need no escaping
    /// (printable ASCII other than `"` and `\`); the byte loop takes it from there.
    ///
    /// Per word, without looking at bytes one by one (the "SWAR" tests of Hacker's Delight /
    /// Bit Twiddling Hacks, each exact about whether *any* byte matches):
    /// - some byte < 0x20: `(w - 0x20…) & ~w & 0x80…`
    /// - some byte >= 0x7F (DEL or non-ASCII): `((w + 0x01…) | w) & 0x80…`
    /// - some byte equal to c: the "< 0x01" test on `w ^ c…`.
    @inline(__always)
    static func plainPrefixLength(_ utf8: UnsafeRawBufferPointer) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = 0
        while index + 8 <= utf8.count {
            let w = utf8.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let control = (w &- 0x20 &* ones) & ~w
            let high = (w &+ ones) | w
            let q = w ^ (UInt64(UInt8(ascii: "\"")) &* ones)
            let quote = (q &- ones) & ~q
            let b = w ^ (UInt64(UInt8(ascii: "\\")) &* ones)
            let backslash = (b &- ones) & ~b
            if (control | high | quote | backslash) & highs != 0 { break }
            index += 8
        }
        return index
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
    }

    /// Writes a quoted, escaped JSON string, or `null` for nil.
    mutating func writeJSONValue(_ value: String?) {
        guard let value else {
            write("null")
            return
        }
        write(UInt8(ascii: "\""))
        writeEscaped(value)
        write(UInt8(ascii: "\""))
    }

    /// Writes the request id as a JSON string, or `null`.
    mutating func writeJSONValue(_ id: AccessLogRecord.RequestIDValue?) {
        switch id {
        case .text(let text): writeJSONValue(text)
        case .generated(let id):
            write(UInt8(ascii: "\""))
            id.write(to: &self)
            write(UInt8(ascii: "\""))
        case nil: write("null")
        }
    }

    /// Writes the request id for the text format, or `-`.
    mutating func writeTextValue(_ id: AccessLogRecord.RequestIDValue?) {
        switch id {
        case .text(let text): writeTextValue(text)
        case .generated(let id): id.write(to: &self)
        case nil: writeTextValue(nil as String?)
        }
    }

    /// Worst-case output size of a request id.
    static func escapedBound(_ id: AccessLogRecord.RequestIDValue?) -> Int {
        switch id {
        case .text(let text): return escapedBound(text)
        case .generated: return GeneratedRequestID.textLength + 4
        case nil: return 4
        }
    }

    /// Writes an escaped value, or Envoy's `-` for a nil or empty one.
    mutating func writeTextValue(_ value: String?) {
        guard let value, !value.isEmpty else {
            write(UInt8(ascii: "-"))
            return
        }
        writeEscaped(value)
    }
}
