/// The authority a request names: `Host`, or the authority of an absolute-form target.
/// Returns the raw authority (for the log) and the normalised host used for decisions.
enum RequestAuthority {
    /// Raw authority as the client sent it, e.g. `Aliyun.com:80`: the authority of an
    /// absolute-form target, else the Host field (the framer has already refused two Host
    /// fields, RFC 9112 §3.2: a server behind us that read the other one would serve a host
    /// the policy never saw).
    static func raw(target: String, host: String?) -> String? {
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            let afterScheme = target.drop(while: { $0 != "/" }).dropFirst(2)
            let authority = afterScheme.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
            if !authority.isEmpty { return String(authority) }
        }
        return host
    }

    /// Lower-cased host without port or trailing dot; IPv6 literals without brackets.
    /// `nil` when the value cannot be a host (CR, LF, NUL, spaces, userinfo, empty).
    static func normalisedHost(_ authority: String) -> String? {
        var host = Substring(authority)
        if host.contains(where: { $0 == "@" }) { return nil }
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else { return nil }
            host = host[..<colon]
        }
        while host.hasSuffix(".") { host = host.dropLast() }
        guard !host.isEmpty, host.utf8.count <= 255 else { return nil }
        for byte in host.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: ":"):
                continue
            default:
                return nil
            }
        }
        return host.lowercased()
    }
}
