extension Registry {
    /// True when this registry already allows `connection` under `REGISTRY_ONLY`: a
    /// ServiceEntry matches it the way the sidecar's listeners match traffic (HTTP by Host on
    /// HTTP ports, TLS by SNI on TLS ports, and by destination address on TCP ports; a tunnel
    /// by its target on a port of any protocol).
    ///
    /// `sluice learn --registry` leaves such traffic out, and tests use it to prove that a
    /// learned registry allows every line it was learned from. It follows the matching order
    /// of `Policy.decide` with the registry's public lookups only.
    public func allows(_ connection: LoggedConnection) -> Bool {
        let port = connection.port
        switch connection.traffic {
        case .http(let host):
            if lookup(host: host, port: port, families: [.http, .opaque]) != nil { return true }
            if let literal = IPAddress(host), lookup(address: literal, port: port, families: [.http, .opaque]) != nil {
                return true
            }
            guard let destination = connection.destination else { return false }
            return lookup(address: destination, port: port, families: .opaque) != nil
        case .tls(let serverName):
            if lookup(host: serverName, port: port, families: [.tls, .opaque]) != nil { return true }
            guard let destination = connection.destination else { return false }
            return lookup(address: destination, port: port, families: [.tls, .opaque]) != nil
        case .tcp:
            guard let destination = connection.destination else { return false }
            return lookup(address: destination, port: port) != nil
        case .tunnel(let host):
            if let literal = IPAddress(host) { return lookup(address: literal, port: port) != nil }
            return lookup(host: host, port: port) != nil
        }
    }
}
