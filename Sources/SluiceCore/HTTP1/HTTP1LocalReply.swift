public import NIOCore

/// The answers the proxy makes itself.
public enum LocalStatus: Sendable {
    case badRequest, forbidden, notFound, methodNotAllowed, requestTimeout, requestHeaderFieldsTooLarge
    case badGateway, serviceUnavailable, gatewayTimeout
    /// Any other status a route decides (a redirect's code, a fault's abort status).
    case other(Int)

    public var code: Int {
        switch self {
        case .badRequest: return 400
        case .forbidden: return 403
        case .notFound: return 404
        case .methodNotAllowed: return 405
        case .requestTimeout: return 408
        case .requestHeaderFieldsTooLarge: return 431
        case .badGateway: return 502
        case .serviceUnavailable: return 503
        case .gatewayTimeout: return 504
        case .other(let code): return code
        }
    }

    public var reason: String {
        switch self {
        case .badRequest: return "Bad Request"
        case .forbidden: return "Forbidden"
        case .notFound: return "Not Found"
        case .methodNotAllowed: return "Method Not Allowed"
        case .requestTimeout: return "Request Timeout"
        case .requestHeaderFieldsTooLarge: return "Request Header Fields Too Large"
        case .badGateway: return "Bad Gateway"
        case .serviceUnavailable: return "Service Unavailable"
        case .gatewayTimeout: return "Gateway Timeout"
        case .other(let code): return Self.reasons[code] ?? "Unknown"
        }
    }
}

extension LocalStatus {
    /// RFC 9110's reason phrases for the statuses a route can ask for.
    static let reasons: [Int: String] = [
        200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other",
        307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
        404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
        418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
        502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
    ]

    /// The status for `code`: a named case when there is one.
    public init(code: Int) {
        switch code {
        case 400: self = .badRequest
        case 403: self = .forbidden
        case 404: self = .notFound
        case 408: self = .requestTimeout
        case 431: self = .requestHeaderFieldsTooLarge
        case 502: self = .badGateway
        case 503: self = .serviceUnavailable
        case 504: self = .gatewayTimeout
        default: self = .other(code)
        }
    }
}

/// The bytes of the responses the proxy makes itself (Envoy's "local replies"): a denial, a
/// failed or timed-out upstream, a bad or slow request, the answers to `Expect:
/// 100-continue` and to a CONNECT. The texts of the bodies are Envoy's router's, as an app
/// behind an Istio sidecar sees them (envoyproxy/envoy source/common/router/router.cc).
public enum HTTP1LocalReply {
    /// Bodies of the local replies.
    public static let missingHostBody = "missing or invalid Host\n"
    public static let upstreamTimeoutBody = "upstream request timeout\n"
    public static let dnsFailureBody = "DNS resolution failure\n"
    public static let noHealthyUpstreamBody = "no healthy upstream\n"
    /// Envoy's RBAC filter's body for a request an AuthorizationPolicy denies (no newline).
    public static let rbacDeniedBody = "RBAC: access denied"

    /// Envoy's body for an upstream that failed before a response head.
    public static func resetBody(reason: String) -> String {
        "upstream connect error or disconnect/reset before headers. reset reason: \(reason)\n"
    }

    /// A buffer capacity that holds the reply with `body`.
    public static func capacity(body: String) -> Int { 160 + body.utf8.count }

    /// A complete response: `content-length`, `content-type: text/plain` when there is a
    /// body, `date`, `server: sluice`, then `connection: close` when the connection closes
    /// after it, or `connection: keep-alive` to an HTTP/1.0 app whose connection stays open.
    /// In the request's version; no body to a HEAD (its length still given). Returns how
    /// many body bytes were written.
    @discardableResult
    public static func write(
        _ status: LocalStatus,
        body: String,
        versionMinor: Int,
        close: Bool,
        isHEAD: Bool,
        date: String,
        extraFields: [(String, String)] = [],
        to out: inout ByteBuffer
    ) -> Int {
        var fields = extraFields
        fields.append(("content-length", String(body.utf8.count)))
        if !body.isEmpty { fields.append(("content-type", "text/plain")) }
        fields.append(("date", date))
        fields.append(("server", "sluice"))
        if close {
            fields.append(("connection", "close"))
        } else if versionMinor == 0 {
            fields.append(("connection", "keep-alive"))
        }
        let includeBody = !body.isEmpty && !isHEAD
        HTTP1Rewrite.writeLocalResponse(
            versionMinor: versionMinor,
            status: status.code,
            reason: status.reason,
            fields: fields,
            body: body,
            includeBody: includeBody,
            to: &out
        )
        return includeBody ? body.utf8.count : 0
    }

    /// `200 OK` to a CONNECT, after which the connection is the tunnel's: no length and no
    /// body (RFC 9110 §9.3.6: a 2xx to CONNECT has none).
    public static func writeConnectEstablished(versionMinor: Int, date: String, to out: inout ByteBuffer) {
        HTTP1Rewrite.writeLocalResponse(
            versionMinor: versionMinor,
            status: 200,
            reason: "OK",
            fields: [("date", date), ("server", "sluice")],
            body: "",
            includeBody: false,
            to: &out
        )
    }

    /// The proxy's own `100 Continue` (Envoy answers `Expect: 100-continue` itself rather
    /// than relaying it).
    public static func writeContinue(versionMinor: Int, to out: inout ByteBuffer) {
        out.writeStaticString(versionMinor == 0 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
    }
}
