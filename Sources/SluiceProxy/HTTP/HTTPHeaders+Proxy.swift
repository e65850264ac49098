import NIOHTTP1

extension HTTPHeaders {
    /// Hop-by-hop fields (RFC 9110 §7.6.1) that a proxy must not forward: the fixed list plus
    /// every name the `Connection` field lists. `transfer-encoding` stays: NIO's encoder
    /// reads it to frame the body it re-encodes.
    mutating func removeHopByHop() {
        // One pass to find out whether there is anything to remove: most heads carry at most
        // `connection`, and eight remove(name:) scans per head showed in the profile.
        var found = false
        for (name, _) in self where Self.isHopByHop(name) {
            found = true
            break
        }
        guard found else { return }
        for listed in self[canonicalForm: "connection"] {
            self.remove(name: String(listed))
        }
        for name in Self.hopByHop {
            self.remove(name: name)
        }
    }

    private static let hopByHop = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization"]

    private static func isHopByHop(_ name: String) -> Bool {
        // Cheap length filter first: hop-by-hop names are 2 to 19 bytes.
        let count = name.utf8.count
        guard count >= 2, count <= 19 else { return false }
        for candidate in hopByHop where candidate.utf8.count == count {
            if name.utf8.elementsEqual(candidate.utf8, by: { a, b in (a | 0x20) == b }) { return true }
        }
        return false
    }
}

/// The authority a request names: `Host`, or the authority of an absolute-form target.
/// Returns the raw authority (for the log) and the normalised host used for decisions.
enum RequestAuthority {
    /// Raw authority as the client sent it, e.g. `Aliyun.com:80`.
    static func raw(_ head: HTTPRequestHead) -> String? {
        if head.uri.hasPrefix("http://") || head.uri.hasPrefix("https://") {
            let afterScheme = head.uri.drop(while: { $0 != "/" }).dropFirst(2)
            let authority = afterScheme.prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" })
            if !authority.isEmpty { return String(authority) }
        }
        // Two Host fields are a 400 (RFC 9112 §3.2), not "take the first": a server behind
        // us that reads the last one would serve a host the policy never saw.
        let hosts = head.headers["host"]
        guard hosts.count <= 1 else { return nil }
        return hosts.first
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
