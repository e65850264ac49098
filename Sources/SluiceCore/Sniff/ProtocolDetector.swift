public import NIOCore

/// What the first bytes of an outbound connection say it speaks.
public enum DetectedProtocol: Equatable, Sendable {
    /// A TLS ClientHello; the SNI host name when the client sent one.
    case tls(serverName: String?)
    /// An HTTP/1.x request line is starting.
    case http
    /// The HTTP/2 connection preface (prior knowledge, h2c).
    case http2
    /// Anything else: forwarded as opaque TCP and decided by address and port.
    case opaque
}

/// Classifies a connection from the bytes the client sent first, without consuming them.
///
/// Detection is biased to availability, as Linkerd's and Envoy's are: anything that is
/// not recognisably TLS or HTTP/1 is opaque TCP, which the policy still decides by address.
public enum ProtocolDetector {
    /// HTTP/1.x methods we hand to the HTTP proxy. `PRI` is not a method: the whole HTTP/2
    /// preface is matched on its own (`HTTP2Preface`).
    static let methods: [[UInt8]] = [
        "GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT ",
    ].map { Array($0.utf8) }

    /// Returns the protocol, or `nil` when more bytes are needed to tell.
    ///
    /// - Parameters:
    ///   - buffer: everything the client has sent so far, from its first byte.
    ///   - maxBytes: past this many bytes without a verdict the connection is opaque.
    public static func detect(_ buffer: ByteBuffer, maxBytes: Int = 16 * 1024 + 64) -> DetectedProtocol? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        // 0x16 = TLS handshake record (RFC 8446 §5.1).
        if first == 0x16 {
            switch ClientHelloParser.parse(buffer) {
            case .incomplete:
                return buffer.readableBytes >= maxBytes ? .opaque : nil
            case .clientHello(let serverName):
                return .tls(serverName: serverName)
            case .notTLS, .malformed:
                return .opaque
            }
        }
        let http = detectHTTP(buffer)
        switch HTTP2Preface.match(buffer) {
        case .complete: return .http2
        case .partial: return http == .opaque ? nil : http
        case .mismatch: return http
        }
    }

    /// Matches the start of a request line against the known method tokens.
    static func detectHTTP(_ buffer: ByteBuffer) -> DetectedProtocol? {
        let available = buffer.readableBytesView
        var prefixOfSome = false
        for method in methods {
            let n = min(method.count, available.count)
            if available.prefix(n).elementsEqual(method.prefix(n)) {
                if n == method.count { return .http }
                prefixOfSome = true
            }
        }
        return prefixOfSome ? nil : .opaque
    }
}
