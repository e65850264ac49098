/// The authority a request names: `Host`, or the authority of an absolute-form target, as
/// the client sent it (for the log); `Authority.parse` gives the form decisions use.
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
}
