/// Decisions for a tunnel whose target is a name, not a packet: the gateway's HTTP CONNECT
/// listener, where the client says `CONNECT host:port` and nothing tells the protocol inside.
extension Policy {
    /// Decides `CONNECT host:port`. A registered host matches on any of its protocols for that
    /// port (TLS first, then HTTP, then opaque by address); an IP literal matches by address.
    /// Where the registry would forward to the "original destination" — there is none behind
    /// a CONNECT — the named host is resolved instead. Unregistered under ALLOW_ANY makes the
    /// gateway a dynamic forward proxy for the name.
    public func decideTunnel(host: String, port: Int) -> Decision {
        if let ip = IPAddress(host) {
            return self.decide(ConnectionFacts(kind: .tcp, destination: ip, port: port))
        }
        let unknown = IPAddress.v4(0)
        var decision = self.decide(ConnectionFacts(kind: .tls(serverName: host), destination: unknown, port: port))
        if decision.match == nil {
            let http = self.decide(ConnectionFacts(kind: .http(host: host), destination: unknown, port: port))
            if http.match != nil { decision = http }
        }
        if case .forward(.originalDestination) = decision.action {
            decision.action = .forward(.resolve(host: host, port: port))
            decision.reason += "; a CONNECT tunnel has no original destination, so \(host) is resolved"
        }
        return decision
    }
}
