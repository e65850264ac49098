/// What the proxy answers itself on one HTTP/2 stream (a denial, or an upstream failure
/// before the response started), shaped as Envoy shapes it.
///
/// For gRPC requests (`content-type: application/grpc…`) Envoy answers "trailers-only":
/// one HEADERS frame with END_STREAM carrying `:status 200`, `content-type:
/// application/grpc`, `grpc-status` and `grpc-message`, the HTTP status mapped to a gRPC
/// code as Envoy's `Grpc::Utility::httpToGrpcStatus` does (502/503/504 → 14 UNAVAILABLE,
/// 404 → 12 UNIMPLEMENTED, 403 → 7 PERMISSION_DENIED, 400 → 13 INTERNAL).
public struct HTTP2LocalReply: Equatable, Sendable {
    /// The `:status` sent.
    public var status: Int
    /// Regular headers after `:status`, in order.
    public var headers: [(String, String)]
    /// The body (empty for a trailers-only gRPC answer).
    public var body: String
    /// The gRPC status code the answer carries, when the request was gRPC.
    public var grpcStatus: Int?

    public static func == (a: Self, b: Self) -> Bool {
        a.status == b.status && a.body == b.body && a.grpcStatus == b.grpcStatus
            && a.headers.elementsEqual(b.headers, by: { $0 == $1 })
    }

    /// Whether a request's content-type makes it gRPC (Envoy's `Grpc::Common::isGrpcRequestHeaders`).
    public static func isGRPC(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let lowered = contentType.lowercased()
        return lowered == "application/grpc" || lowered.hasPrefix("application/grpc+") || lowered.hasPrefix("application/grpc;")
    }

    /// Envoy's mapping of an HTTP status to a gRPC status code.
    public static func grpcStatus(forHTTP status: Int) -> Int {
        switch status {
        case 400: return 13  // INTERNAL
        case 401: return 16  // UNAUTHENTICATED
        case 403: return 7  // PERMISSION_DENIED
        case 404: return 12  // UNIMPLEMENTED
        case 429, 502, 503, 504: return 14  // UNAVAILABLE
        default: return 2  // UNKNOWN
        }
    }

    /// The answer to a request with `status` and `body`, gRPC-shaped when `grpc` is set.
    public init(status: Int, body: String, grpc: Bool) {
        if grpc {
            let code = Self.grpcStatus(forHTTP: status)
            self.status = 200
            let message = body.isEmpty ? Self.defaultMessage(status) : body.trimmingTrailingNewline
            self.headers = [("content-type", "application/grpc"), ("grpc-status", String(code)), ("grpc-message", message)]
            self.body = ""
            self.grpcStatus = code
        } else {
            self.status = status
            var headers = [("content-length", String(body.utf8.count))]
            if !body.isEmpty { headers.append(("content-type", "text/plain")) }
            self.headers = headers
            self.body = body
            self.grpcStatus = nil
        }
    }

    private static func defaultMessage(_ status: Int) -> String {
        switch status {
        case 404: return "route not found"
        case 502: return "upstream blocked: not in the service registry"
        default: return "upstream unavailable"
        }
    }
}

extension String {
    fileprivate var trimmingTrailingNewline: String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}
