/// Decisions for a tunnel whose target is a name, not a packet: the gateway's HTTP CONNECT
/// listener, where the client says `CONNECT host:port` and nothing tells the protocol inside.
extension Policy {
    /// Decides `CONNECT host:port`; the same as `decide(tunnelTo: HostPort(host: host, port: port))`.
    ///
    /// A registered host matches on a port of any protocol (the tunnel may carry anything); an
    /// IP literal matches by address. Where the registry would forward to the "original
    /// destination" (there is none behind a CONNECT), the named host is resolved instead.
    /// Unregistered under ALLOW_ANY makes the gateway a dynamic forward proxy for the name.
    public func decideTunnel(host: String, port: Int) -> Decision {
        decide(tunnelTo: HostPort(host: host, port: port))
    }
}
