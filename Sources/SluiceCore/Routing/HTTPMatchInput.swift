/// What VirtualService http match conditions read of one request, as bytes: the method, the
/// path without its query, header values by lower-cased name. It points into the request's
/// own storage (a parsed head's buffer, or a view's strings), so it exists only inside the
/// closure that made it: matching builds no `String`, closure or array per request.
struct HTTPMatchInput {
    typealias Bytes = UnsafeBufferPointer<UInt8>
    /// The method, as sent.
    let method: Bytes
    /// The origin-form path up to its `?` (what `uri` matches read).
    let uriPath: Bytes
    /// False when deciding without the request: uri, method and header conditions then fail.
    let hasRequest: Bool
    private let headers: Headers

    private enum Headers {
        /// A parsed HTTP/1 head: its bytes and field ranges.
        case head(raw: UnsafeRawBufferPointer, fields: UnsafeBufferPointer<HTTP1Field>)
        /// A view's lookup by lower-cased name (HTTP/2, `explain`, tests).
        case lookup(@Sendable (String) -> String?)
        case none
    }

    /// The first value of the header named `lowercasedName` (nil when absent) handed to `body`.
    func withHeader<R>(_ lowercasedName: Bytes, _ body: (Bytes?) -> R) -> R {
        switch headers {
        case .head(let raw, let fields):
            for field in fields where HTTP1Bytes.equal(raw, field.name, lowercasedName, caseInsensitive: true) {
                return body(Self.slice(raw, field.value))
            }
            return body(nil)
        case .lookup(let header):
            guard var value = header(String(decoding: lowercasedName, as: UTF8.self)) else { return body(nil) }
            return value.withUTF8 { body($0) }
        case .none:
            return body(nil)
        }
    }

    /// Whether the request has a header named `lowercasedName`.
    func hasHeader(_ lowercasedName: Bytes) -> Bool {
        withHeader(lowercasedName) { $0 != nil }
    }

    /// No request: what deciding by authority alone matches with.
    static func withoutRequest<R>(_ body: (HTTPMatchInput) -> R) -> R {
        body(HTTPMatchInput(method: Bytes(start: nil, count: 0), uriPath: Bytes(start: nil, count: 0), hasRequest: false, headers: .none))
    }

    /// The input for `view`.
    static func with<R>(_ view: HTTPRequestView, _ body: (HTTPMatchInput) -> R) -> R {
        var method = view.method
        var path = view.uriPath
        return method.withUTF8 { method in
            path.withUTF8 { path in
                body(HTTPMatchInput(method: method, uriPath: path, hasRequest: true,
                                    headers: .lookup(view.header)))
            }
        }
    }

    /// The input for a parsed request head, read in its own bytes.
    static func with<R>(_ head: borrowing HTTP1Head, _ body: (HTTPMatchInput) -> R) -> R {
        let (method, path) = (head.method, head.uriPathRange)
        return head.bytes.withUnsafeReadableBytes { raw in
            head.fields.withUnsafeBufferPointer { fields in
                let headers = Headers.head(raw: raw, fields: fields)
                let methodBytes = slice(raw, method)
                guard let path else {
                    // An absolute-form target without a path: `/`.
                    return withUnsafeBytes(of: UInt8(ascii: "/")) { slash in
                        body(HTTPMatchInput(method: methodBytes, uriPath: slash.assumingMemoryBound(to: UInt8.self), hasRequest: true, headers: headers))
                    }
                }
                return body(HTTPMatchInput(method: methodBytes, uriPath: slice(raw, path), hasRequest: true, headers: headers))
            }
        }
    }

    /// `range` of `raw` (clamped to it) as bytes.
    private static func slice(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bytes {
        UnsafeRawBufferPointer(rebasing: raw[range.clamped(to: 0..<raw.count)]).assumingMemoryBound(to: UInt8.self)
    }
}

extension HTTP1Head {
    /// The bytes of the target's origin-form path up to its `?` (`HTTP1Head.originPath`'s
    /// meaning); nil for an absolute form without a path, whose path is `/`.
    var uriPathRange: Range<Int>? {
        bytes.withUnsafeReadableBytes { raw in
            let target = self.target.clamped(to: 0..<raw.count)
            var start = target.lowerBound
            if start < target.upperBound, raw[start] != UInt8(ascii: "/") {
                // `scheme://authority/path`: the path starts at the first `/` or `?` after `://`.
                var i = start
                while i + 2 < target.upperBound, !(raw[i] == UInt8(ascii: ":") && raw[i + 1] == UInt8(ascii: "/") && raw[i + 2] == UInt8(ascii: "/")) {
                    i += 1
                }
                if i + 2 < target.upperBound {
                    i += 3
                    while i < target.upperBound, raw[i] != UInt8(ascii: "/"), raw[i] != UInt8(ascii: "?") { i += 1 }
                    guard i < target.upperBound, raw[i] == UInt8(ascii: "/") else { return nil }
                    start = i
                }
            }
            var end = start
            while end < target.upperBound, raw[end] != UInt8(ascii: "?") { end += 1 }
            return start..<end
        }
    }
}
