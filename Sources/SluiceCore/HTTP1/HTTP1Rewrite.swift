public import NIOCore

/// Writes the head a proxy forwards, from the head it parsed: the start line in the version
/// it speaks, every end-to-end field copied as the bytes it read (no `String` per field), the
/// hop-by-hop fields (RFC 9110 §7.6.1: the fixed list and every name `Connection` lists)
/// left out, and the proxy's own fields added. Bodies are forwarded as read, so
/// `Transfer-Encoding` stays unless the body is being de-chunked.
public enum HTTP1Rewrite {
    /// What the proxy changes in a request it forwards.
    public struct RequestEdits: Sendable {
        /// The protocol the app asked to switch to: `Connection: upgrade` + `Upgrade` are
        /// forwarded (hop-by-hop, but a WebSocket handshake must reach the origin).
        public var upgrade: String?
        /// Added as `x-request-id` (when the request had none).
        public var requestID: GeneratedRequestID?
        /// Replaces every `x-forwarded-for` field with this one value (the gateway appends
        /// the client's address to what came in).
        public var forwardedFor: String?
        /// `Expect: 100-continue` was answered by the proxy: not forwarded.
        public var dropExpect = false
        /// A VirtualService route's rewrite and request header operations; nil (no routes, or
        /// none asked for) writes the head on the plain path.
        public var route: RouteRequestEdits?

        public init(upgrade: String? = nil, requestID: GeneratedRequestID? = nil, forwardedFor: String? = nil, dropExpect: Bool = false) {
            self.upgrade = upgrade
            self.requestID = requestID
            self.forwardedFor = forwardedFor
            self.dropExpect = dropExpect
        }
    }

    /// The `Connection` field the proxy sends the app.
    public enum ConnectionField: Sendable, Equatable {
        case none
        case close
        case keepAlive
        /// A 101: `Connection: upgrade` and `Upgrade: <protocol>`.
        case upgrade(String)
    }

    /// What the proxy changes in a response it relays.
    public struct ResponseEdits: Sendable {
        /// `HTTP/1.<minor>` on the status line: the app's version.
        public var versionMinor: Int
        /// Envoy's `x-envoy-upstream-service-time` (replaces any the upstream sent).
        public var serviceTimeMs: Int64?
        public var connection: ConnectionField
        /// The body is being de-chunked for an HTTP/1.0 app.
        public var dropTransferEncoding = false
        /// A VirtualService route's `headers.response`; nil: none.
        public var routeHeaders: HeaderEdits?

        public init(versionMinor: Int, serviceTimeMs: Int64? = nil, connection: ConnectionField = .none, dropTransferEncoding: Bool = false) {
            self.versionMinor = versionMinor
            self.serviceTimeMs = serviceTimeMs
            self.connection = connection
            self.dropTransferEncoding = dropTransferEncoding
        }
    }

    /// `METHOD target HTTP/1.1`, the request's end-to-end fields, then the edits.
    /// A route's edits (`edits.route`) replace the target and Host and apply its header
    /// operations; without them nothing else is looked at.
    public static func writeUpstreamRequest(_ head: HTTP1Head, edits: RequestEdits, to out: inout ByteBuffer) {
        let route = edits.route
        out.writeBounded(upstreamRequestBound(head, edits: edits)) { w in
            head.bytes.withUnsafeReadableBytes { raw in
                w.write(bytes: UnsafeRawBufferPointer(rebasing: raw[head.method]))
                w.write(UInt8(ascii: " "))
                if let target = route?.target {
                    w.write(string: target)
                } else {
                    w.write(bytes: UnsafeRawBufferPointer(rebasing: raw[head.target]))
                }
                w.write(" HTTP/1.1\r\n")
                if let route { route.writeHost(head, to: &w) }
                copyFields(head, raw, to: &w, dropping: route.map { route in { route.drops($0, $1, head) } }) { kind in
                    switch kind {
                    case .hopByHop: return false
                    case .expect: return !edits.dropExpect
                    case .forwardedFor: return edits.forwardedFor == nil
                    default: return true
                    }
                }
            }
            writeProxyFields(edits, to: &w)
            route?.headers.writeAppended(to: &w)
            w.write("\r\n")
        }
    }

    /// The request fields the proxy adds: upgrade, request id, x-forwarded-for.
    @inline(__always)
    static func writeProxyFields(_ edits: RequestEdits, to w: inout BoundedWriter) {
        if let upgrade = edits.upgrade {
            w.write("connection: upgrade\r\nupgrade: ")
            w.write(string: upgrade)
            w.write("\r\n")
        }
        if let requestID = edits.requestID {
            w.write("x-request-id: ")
            requestID.write(to: &w)
            w.write("\r\n")
        }
        if let forwardedFor = edits.forwardedFor {
            w.write("x-forwarded-for: ")
            w.write(string: forwardedFor)
            w.write("\r\n")
        }
    }

    /// `HTTP/1.x code reason`, the response's end-to-end fields, then the edits.
    public static func writeDownstreamResponse(_ head: HTTP1Head, edits: ResponseEdits, to out: inout ByteBuffer) {
        let routeHeaders = edits.routeHeaders
        out.writeBounded(downstreamResponseBound(head, edits: edits)) { w in
            w.write(edits.versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            writeStatusCode(head.status, to: &w)
            w.write(UInt8(ascii: " "))
            head.bytes.withUnsafeReadableBytes { raw in
                w.write(bytes: UnsafeRawBufferPointer(rebasing: raw[head.reason]))
                w.write("\r\n")
                copyFields(head, raw, to: &w, dropping: routeHeaders.map { headers in { _, name in headers.drops(name) } }) { kind in
                    switch kind {
                    case .hopByHop: return false
                    case .serviceTime: return edits.serviceTimeMs == nil
                    case .transferEncoding: return !edits.dropTransferEncoding
                    default: return true
                    }
                }
            }
            writeResponseProxyFields(edits, to: &w)
            routeHeaders?.writeAppended(to: &w)
            w.write("\r\n")
        }
    }

    /// The response fields the proxy adds: service time, connection.
    @inline(__always)
    static func writeResponseProxyFields(_ edits: ResponseEdits, to w: inout BoundedWriter) {
        if let ms = edits.serviceTimeMs {
            w.write("x-envoy-upstream-service-time: ")
            w.writeDecimal(max(ms, 0))
            w.write("\r\n")
        }
        switch edits.connection {
        case .none: break
        case .close: w.write("connection: close\r\n")
        case .keepAlive: w.write("connection: keep-alive\r\n")
        case .upgrade(let upgrade):
            w.write("connection: upgrade\r\nupgrade: ")
            w.write(string: upgrade)
            w.write("\r\n")
        }
    }

    /// Most bytes `writeUpstreamRequest` writes: the head as read bounds the start line and the
    /// fields kept; the rest is ours. Allocate this much and the write never reallocates.
    public static func upstreamRequestBound(_ head: HTTP1Head, edits: RequestEdits) -> Int {
        head.bytes.readableBytes + 128
            + (edits.upgrade?.utf8.count ?? 0) + (edits.requestID == nil ? 0 : GeneratedRequestID.textLength) + (edits.forwardedFor?.utf8.count ?? 0)
            + (edits.route?.bound ?? 0)
    }

    /// Most bytes `writeDownstreamResponse` writes.
    public static func downstreamResponseBound(_ head: HTTP1Head, edits: ResponseEdits) -> Int {
        let route = edits.routeHeaders?.appendedBound ?? 0
        if case .upgrade(let upgrade) = edits.connection { return head.bytes.readableBytes + 128 + upgrade.utf8.count + route }
        return head.bytes.readableBytes + 128 + route
    }

    /// A complete response of the proxy's own: status line, the given fields, the body.
    public static func writeLocalResponse(
        versionMinor: Int,
        status: Int,
        reason: String,
        fields: [(String, String)],
        body: String,
        includeBody: Bool,
        to out: inout ByteBuffer
    ) {
        var bound = 64 + reason.utf8.count + (includeBody ? body.utf8.count : 0)
        for (name, value) in fields { bound += name.utf8.count + value.utf8.count + 4 }
        out.writeBounded(bound) { w in
            w.write(versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            writeStatusCode(status, to: &w)
            w.write(UInt8(ascii: " "))
            w.write(string: reason)
            w.write("\r\n")
            for (name, value) in fields {
                w.write(string: name)
                w.write(": ")
                w.write(string: value)
                w.write("\r\n")
            }
            w.write("\r\n")
            if includeBody { w.write(string: body) }
        }
    }

    // MARK: fields

    /// Copies the field lines `keep` accepts (by class) and that `Connection` does not list,
    /// as read: runs of neighbouring lines with one write each.
    static func copyFields(
        _ head: HTTP1Head,
        _ raw: UnsafeRawBufferPointer,
        to out: inout BoundedWriter,
        dropping drop: ((HTTP1Field, UnsafeRawBufferPointer) -> Bool)? = nil,
        keeping keep: (FieldClass) -> Bool
    ) {
        let listed = connectionListed(head, raw)
        var run = LineRun()
        for field in head.fields {
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            if keep(classify(name)) && (listed.isEmpty || !isListed(name, listed, raw)) && !(drop?(field, name) ?? false) {
                run.add(field, raw, to: &out)
            } else {
                run.flush(raw, to: &out)
            }
        }
        run.flush(raw, to: &out)
    }

    enum FieldClass {
        case endToEnd, hopByHop, expect, forwardedFor, serviceTime, transferEncoding
    }

    /// What the proxy does with a field, by its name (case-insensitive). Lengths first: most
    /// names match none of the few lengths the special names have.
    static func classify(_ name: UnsafeRawBufferPointer) -> FieldClass {
        switch name.count {
        case 2: return equals(name, "te") ? .hopByHop : .endToEnd
        case 6: return equals(name, "expect") ? .expect : .endToEnd
        case 7: return equals(name, "upgrade") ? .hopByHop : .endToEnd
        case 10:
            return equals(name, "connection") || equals(name, "keep-alive") ? .hopByHop : .endToEnd
        case 15: return equals(name, "x-forwarded-for") ? .forwardedFor : .endToEnd
        case 16: return equals(name, "proxy-connection") ? .hopByHop : .endToEnd
        case 17: return equals(name, "transfer-encoding") ? .transferEncoding : .endToEnd
        case 19: return equals(name, "proxy-authorization") ? .hopByHop : .endToEnd
        case 29: return equals(name, "x-envoy-upstream-service-time") ? .serviceTime : .endToEnd
        default: return .endToEnd
        }
    }

    /// ASCII case-insensitive comparison with a lower-case literal.
    static func equals(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let literal = UnsafeRawBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
        for i in 0..<bytes.count where bytes[i] | 0x20 != literal[i] {
            // `| 0x20` folds letters; for '-' (0x2d) it is a no-op, and no other byte of a
            // token folds onto a lower-case letter of these names.
            return false
        }
        return true
    }

    /// The names the `Connection` fields list beyond close / keep-alive / upgrade (which are
    /// dropped anyway): ranges into the head. Empty, and allocation-free, when there are none.
    ///
    /// Never Content-Length, Transfer-Encoding or Host, whatever `Connection` says (found by the
    /// `http1` fuzz target): the framer delimited the body by the first two, and policy decided on
    /// the third, so dropping them would forward a message framed differently from the one we read
    /// (`Connection: content-length` would turn the body into a smuggled next request, upstream or
    /// at the client) or a Host-less HTTP/1.1 request. RFC 9110 §7.6.1 forbids senders to list
    /// such fields, so keeping them only overrides a sender already in the wrong.
    static func connectionListed(_ head: HTTP1Head, _ raw: UnsafeRawBufferPointer) -> [Range<Int>] {
        var listed: [Range<Int>] = []
        for field in head.fields where field.name.count == 10 {
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            guard equals(name, "connection") else { continue }
            var start = field.value.lowerBound
            var i = start
            while i <= field.value.upperBound {
                if i == field.value.upperBound || raw[i] == UInt8(ascii: ",") {
                    var lo = start
                    var hi = i
                    while lo < hi, raw[lo] == UInt8(ascii: " ") || raw[lo] == UInt8(ascii: "\t") { lo += 1 }
                    while hi > lo, raw[hi - 1] == UInt8(ascii: " ") || raw[hi - 1] == UInt8(ascii: "\t") { hi -= 1 }
                    let token = UnsafeRawBufferPointer(rebasing: raw[lo..<hi])
                    if !token.isEmpty, !equals(token, "close"), !equals(token, "keep-alive"), !equals(token, "upgrade"),
                        !equals(token, "content-length"), !equals(token, "transfer-encoding"), !equals(token, "host")
                    {
                        listed.append(lo..<hi)
                    }
                    start = i + 1
                }
                i += 1
            }
        }
        return listed
    }

    static func isListed(_ name: UnsafeRawBufferPointer, _ listed: [Range<Int>], _ raw: UnsafeRawBufferPointer) -> Bool {
        for range in listed where range.count == name.count {
            var same = true
            // Fold A-Z only: `| 0x20` on both sides would also equate "^" with "~", "@" with "`",
            // "[\\]" with "{|}" (found by the `http1` fuzz target: `Connection: x^y` dropped `x~y`).
            for (i, j) in zip(name.indices, range) where asciiLower(name[i]) != asciiLower(raw[j]) {
                same = false
                break
            }
            if same { return true }
        }
        return false
    }

    @inline(__always)
    static func asciiLower(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// Kept field lines next to each other in the head are copied with one write: the
    /// lines as read, each with its CRLF.
    struct LineRun {
        private var range: Range<Int>?

        mutating func add(_ field: HTTP1Field, _ raw: UnsafeRawBufferPointer, to out: inout BoundedWriter) {
            let line = field.line.lowerBound..<min(field.line.upperBound + 2, raw.count)
            if let current = self.range, current.upperBound == line.lowerBound {
                self.range = current.lowerBound..<line.upperBound
            } else {
                self.flush(raw, to: &out)
                self.range = line
            }
        }

        mutating func flush(_ raw: UnsafeRawBufferPointer, to out: inout BoundedWriter) {
            guard let range = self.range else { return }
            out.write(bytes: UnsafeRawBufferPointer(rebasing: raw[range]))
            self.range = nil
        }
    }

    static func writeStatusCode(_ status: Int, to out: inout BoundedWriter) {
        out.writePadded(min(max(status, 100), 999), width: 3)
    }
}
