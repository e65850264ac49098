import SluiceCore

extension TrafficKind {
    /// An HTTP request whose Host is `host` (parsed as the HTTP path parses it).
    static func http(host: String) -> TrafficKind {
        guard let authority = Authority(host) else { fatalError("bad test Host \(host)") }
        return .http(authority)
    }
}

extension Policy {
    /// A CONNECT to `target`.
    func decide(tunnelTo target: HostPort) -> Decision {
        guard let authority = Authority(target.description, as: .hostAndPort) else { fatalError("bad test target \(target)") }
        return decide(tunnelTo: authority)
    }
}
