/// Envoy's codec conversion for an HTTP/2 stream sent to an HTTP/1.1 origin (a port declared
/// `HTTP`): the request's pseudo-headers become the request line and `Host`, its other headers
/// are copied but for the connection-specific ones (RFC 9113 §8.2.2), split `cookie` fields
/// are joined again (RFC 9113 §8.2.3); the response head becomes `:status` and lowercase
/// headers without the HTTP/1 connection-specific ones. Trailers are not carried (Envoy drops
/// them towards an HTTP/1 upstream unless `enable_trailers` is set).
public enum HTTP2ToHTTP1 {
    /// The HTTP/1.1 request head for a stream and how its body is framed.
    public struct Request: Equatable, Sendable {
        /// Request line through the final CRLF CRLF.
        public var head: String
        /// The body goes chunked (no `content-length`, and the stream did not end with its HEADERS).
        public var chunked: Bool
    }

    public enum ConversionError: Error, Equatable {
        case missingPseudoHeader(String)
    }

    /// Fields HTTP/1 scopes to one connection: never copied across the codec in either direction.
    static let connectionSpecific: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings",
    ]

    /// Methods whose request means a body: without one, Envoy's HTTP/1 codec sends
    /// `content-length: 0` so the origin does not wait for one.
    static let bodyMethods: Set<String> = ["POST", "PUT", "PATCH"]

    /// `headers` are the stream's HEADERS in order (pseudo-headers included); `endStream`
    /// whether that frame ended the stream (no body follows).
    public static func request(headers: [(String, String)], endStream: Bool) throws(ConversionError) -> Request {
        var method: String?
        var path: String?
        var authority: String?
        var host: String?
        var cookies: [String] = []
        var fields = ""
        var contentLength = false
        for (name, value) in headers {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":scheme": continue
            case "host": host = value
            case "cookie": cookies.append(value)
            default:
                if name.hasPrefix(":") || connectionSpecific.contains(name) { continue }
                if name == "content-length" { contentLength = true }
                fields += "\(name): \(value)\r\n"
            }
        }
        guard let method else { throw .missingPseudoHeader(":method") }
        guard let path else { throw .missingPseudoHeader(":path") }
        guard let hostValue = authority ?? host else { throw .missingPseudoHeader(":authority") }
        var head = "\(method) \(path) HTTP/1.1\r\nhost: \(hostValue)\r\n"
        head += fields
        if !cookies.isEmpty { head += "cookie: \(cookies.joined(separator: "; "))\r\n" }
        var chunked = false
        if !contentLength {
            if !endStream {
                head += "transfer-encoding: chunked\r\n"
                chunked = true
            } else if bodyMethods.contains(method) {
                head += "content-length: 0\r\n"
            }
        }
        head += "\r\n"
        return Request(head: head, chunked: chunked)
    }

    /// The HTTP/2 response HEADERS for an HTTP/1 response head: `:status` first, then each
    /// field lowercased, without connection-specific ones and without those the origin's
    /// `Connection` field names.
    public static func responseHeaders(status: Int, fields: [(String, String)]) -> [(String, String)] {
        var named: Set<String> = []
        for (name, value) in fields where name.lowercased() == "connection" {
            for token in value.split(separator: ",") {
                named.insert(trimmedOWS(token).lowercased())
            }
        }
        var out: [(String, String)] = [(":status", String(status))]
        for (name, value) in fields {
            let lowered = name.lowercased()
            if connectionSpecific.contains(lowered) || named.contains(lowered) { continue }
            out.append((lowered, value))
        }
        return out
    }

    /// The line before a chunk of `size` bytes (RFC 9112 §7.1): size in hex, CRLF.
    public static func chunkPrefix(size: Int) -> String {
        String(size, radix: 16) + "\r\n"
    }

    /// `text` without leading and trailing spaces and tabs (RFC 9110 OWS).
    static func trimmedOWS(_ text: Substring) -> String {
        var slice = text
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }

    /// After each chunk's bytes.
    public static let chunkSuffix = "\r\n"
    /// The last chunk and the end of the (empty) trailer section.
    public static let lastChunk = "0\r\n\r\n"
}
