extension Policy {
    /// The decision this policy makes on a connection read back from an access log, through
    /// the same calls the data path makes (the listener's decision before reading, then the
    /// one on the first bytes; a tunnel by its target). Nil when the line does not say enough
    /// to decide: opaque TCP without its original destination.
    ///
    /// `sluice replay` and `sluice explain --log` ask it what a registry does with yesterday's
    /// traffic; `sluice learn --registry` and the learn tests ask whether a registry allows it.
    public func decide(_ logged: LoggedConnection) -> Decision? {
        let port = logged.port
        switch logged.traffic {
        case .tunnel(let host):
            return decide(tunnelTo: Authority(host: host, port: port))
        case .http(let host):
            // An HTTP request's Host decides unless the address alone already did.
            let destination = logged.destination ?? Authority(host: host).address ?? .v4(0)
            return decideBeforeReading(destination: destination, port: port)
                ?? decide(ConnectionFacts(kind: .http(Authority(host: host)), destination: destination, port: port))
        case .tls(let serverName):
            let destination = logged.destination ?? .v4(0)
            return decideBeforeReading(destination: destination, port: port)
                ?? decide(ConnectionFacts(kind: .tls(serverName: serverName), destination: destination, port: port))
        case .tcp:
            guard let destination = logged.destination else { return nil }
            return decideBeforeReading(destination: destination, port: port)
                ?? decide(ConnectionFacts(kind: .tcp, destination: destination, port: port))
        }
    }
}

extension Registry {
    /// True when this registry already allows `connection` under `REGISTRY_ONLY`, as the
    /// sidecar's decision stage (`Policy`) decides it: there is no second copy of the rules.
    ///
    /// `sluice learn --registry` leaves such traffic out, and tests use it to prove that a
    /// learned registry allows every line it was learned from.
    public func allows(_ connection: LoggedConnection) -> Bool {
        guard let decision = Policy(mode: .registryOnly, registry: self, gateway: nil).decide(connection) else { return false }
        return !decision.isDenied
    }
}
