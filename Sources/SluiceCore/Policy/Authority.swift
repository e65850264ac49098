/// A host name or IP address with an optional port, as an HTTP `Host`, an absolute-form
/// request target, a TLS SNI, a CONNECT target or `sluice explain`'s URL names it.
///
/// One parser for all of them, so the policy sees one normal form whatever the source:
/// lowercase, IPv6 without brackets, one trailing dot removed (`example.com.` is the same
/// name). Parsing is by bytes and refuses anything that cannot be a host: userinfo (`@`),
/// control characters, spaces, percent-escapes, empty labels, non-ASCII (an IDN travels as
/// its `xn--` punycode form, RFC 5890), a port outside 1…65535.
public struct Authority: Sendable, Hashable, CustomStringConvertible {
    /// The host in normal form: a lowercase DNS name, or an IP address's canonical text.
    public let host: String
    /// The port when the text named one (`host:port`).
    public let port: Int?
    /// The address when the host is an IP literal.
    public let address: IPAddress?

    /// Why a text is not an authority.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case empty
        case userinfo
        case badCharacter(UInt8)
        case nonASCII
        case badIPv6Literal
        case badPort
        case portRequired
        case portNotAllowed
        case emptyLabel
        case labelTooLong
        case nameTooLong

        /// A short message for logs and `sluice explain`.
        public var description: String {
            switch self {
            case .empty: return "empty host"
            case .userinfo: return "userinfo (@) is not allowed in an authority"
            case .badCharacter(let byte): return "byte 0x\(String(byte, radix: 16)) is not allowed in a host"
            case .nonASCII: return "non-ASCII host; an internationalised name must be sent in its xn-- (punycode) form"
            case .badIPv6Literal: return "malformed [IPv6] literal"
            case .badPort: return "port must be a number from 1 to 65535"
            case .portRequired: return "a port is required (host:port)"
            case .portNotAllowed: return "a port is not allowed here"
            case .emptyLabel: return "empty label in host name"
            case .labelTooLong: return "a host name label is longer than 63 bytes"
            case .nameTooLong: return "host name is longer than 253 bytes"
            }
        }
    }

    /// Which form the text must have.
    public enum Form: Sendable {
        /// `host[:port]`: an HTTP Host field or absolute-form authority.
        case hostAndOptionalPort
        /// `host:port`: a CONNECT request target (RFC 9110 §9.3.6).
        case hostAndPort
        /// A bare name: a TLS SNI (RFC 6066 §3), never with a port.
        case hostOnly
    }

    /// Creates an authority from parts already in normal form (tests, explain).
    public init(host: String, port: Int? = nil) {
        self.host = host
        self.port = port
        self.address = IPAddress(host)
    }

    /// Parses `text` in the given form.
    public static func parse(_ text: some StringProtocol, as form: Form = .hostAndOptionalPort) -> Result<Authority, ParseError> {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { parse(bytes: $0, as: form) }
    }

    /// `parse` as an optional, for callers that answer every failure the same way.
    public init?(_ text: some StringProtocol, as form: Form = .hostAndOptionalPort) {
        guard case .success(let parsed) = Authority.parse(text, as: form) else { return nil }
        self = parsed
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>, as form: Form) -> Result<Authority, ParseError> {
        guard !bytes.isEmpty else { return .failure(.empty) }
        var hostStart = 0
        var hostEnd = bytes.count
        var portText: Slice<UnsafeBufferPointer<UInt8>>?
        var bracketed = false

        if bytes[0] == UInt8(ascii: "[") {
            // "[v6]" or "[v6]:port" (RFC 3986 §3.2.2).
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return .failure(.badIPv6Literal) }
            hostStart = 1
            hostEnd = close
            bracketed = true
            let after = close + 1
            if after < bytes.count {
                guard bytes[after] == UInt8(ascii: ":") else { return .failure(.badIPv6Literal) }
                portText = bytes[(after + 1)...]
            }
        } else {
            var colons = 0
            var lastColon = -1
            for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: ":") {
                colons += 1
                lastColon = index
            }
            if colons == 1 {
                hostEnd = lastColon
                portText = bytes[(lastColon + 1)...]
            }
            // Two or more colons: a bare IPv6 address (tolerated, as curl and Envoy do); checked below.
        }

        var port: Int?
        if let portText {
            // "host:" has an empty port, which RFC 3986 allows and means "no port".
            if !portText.isEmpty {
                guard portText.count <= 5 else { return .failure(.badPort) }
                var value = 0
                for byte in portText {
                    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return .failure(.badPort) }
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                }
                guard (1...65535).contains(value) else { return .failure(.badPort) }
                port = value
            }
        }
        switch form {
        case .hostAndPort where port == nil: return .failure(.portRequired)
        case .hostOnly where portText != nil: return .failure(.portNotAllowed)
        default: break
        }

        let host = UnsafeBufferPointer(rebasing: bytes[hostStart..<hostEnd])
        guard !host.isEmpty else { return .failure(.empty) }
        let hostText = String(decoding: host, as: UTF8.self)
        if bracketed || host.contains(UInt8(ascii: ":")) {
            guard case .v6? = IPAddress(hostText) else { return .failure(.badIPv6Literal) }
            return .success(Authority(normalisedHost: IPAddress(hostText)?.description ?? hostText, port: port))
        }
        return checkName(host).map { name in Authority(normalisedHost: name, port: port) }
    }

    private init(normalisedHost: String, port: Int?) {
        self.host = normalisedHost
        self.port = port
        self.address = IPAddress(normalisedHost)
    }

    /// Validates a DNS name (or dotted IPv4) and returns its normal form.
    private static func checkName(_ name: UnsafeBufferPointer<UInt8>) -> Result<String, ParseError> {
        var end = name.count
        if name[end - 1] == UInt8(ascii: ".") { end -= 1 }  // one trailing dot: the root
        guard end > 0 else { return .failure(.emptyLabel) }
        guard end <= 253 else { return .failure(.nameTooLong) }
        var lowered = [UInt8]()
        lowered.reserveCapacity(end)
        var labelLength = 0
        for index in 0..<end {
            var byte = name[index]
            switch byte {
            case UInt8(ascii: "."):
                guard labelLength > 0 else { return .failure(.emptyLabel) }
                labelLength = 0
                lowered.append(byte)
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                byte += 32
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                break
            case UInt8(ascii: "@"):
                return .failure(.userinfo)
            case 0x80...:
                return .failure(.nonASCII)
            default:
                return .failure(.badCharacter(byte))
            }
            labelLength += 1
            guard labelLength <= 63 else { return .failure(.labelTooLong) }
            lowered.append(byte)
        }
        guard labelLength > 0 else { return .failure(.emptyLabel) }
        return .success(String(decoding: lowered, as: UTF8.self))
    }

    /// `host`, `host:port` or `[v6]:port`.
    public var description: String {
        let shown = address.map { if case .v6 = $0 { return "[\(host)]" } else { return host } } ?? host
        return port.map { "\(shown):\($0)" } ?? shown
    }
}
