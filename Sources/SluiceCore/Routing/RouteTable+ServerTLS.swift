/// Gateway servers that terminate TLS (issue 21): a selected Istio `Gateway` server with
/// `tls.mode: ISTIO_MUTUAL` switches on mutual-TLS termination on the gateway listener with the
/// same port (the listeners themselves still come from `listeners:` in sluice.yaml), and the
/// decrypted traffic is routed as Istio's "Egress gateway with mTLS" task has it: HTTP by Host
/// for protocol HTTP/HTTPS, the app's own TLS by its inner SNI for protocol TLS.
extension RouteTable.Server {
    /// The server's `tls.mode` as a listener mode the gateway applies, nil when it has none or
    /// one the gateway does not terminate (OPTIONAL_MUTUAL, AUTO_PASSTHROUGH).
    public var listenerTLSMode: ServerTLSMode? {
        tlsMode.flatMap { ServerTLSMode(rawValue: $0.uppercased()) }
    }

    /// Whether the server terminates Istio mutual TLS.
    var terminatesIstioMutual: Bool { listenerTLSMode == .istioMutual }
    /// Whether the server terminates TLS (ISTIO_MUTUAL, SIMPLE or MUTUAL): HTTP inside is routed by Host.
    var terminatesTLS: Bool { listenerTLSMode.map { $0 == .istioMutual || $0.usesServerFiles } ?? false }
}

extension RouteTable {
    /// `listeners` (sluice.yaml) with the TLS mode of the selected Gateway servers on the same
    /// port: the Gateway object wins where they differ, with a warning naming both.
    public func applyingServerTLS(to listeners: [ListenerConfig]) -> (listeners: [ListenerConfig], warnings: [String]) {
        var warnings: [String] = []
        let applied = listeners.map { listener -> ListenerConfig in
            let onPort = servers.filter { $0.port == listener.port }
            let modes = Set(onPort.compactMap(\.listenerTLSMode))
            guard let mode = modes.first else { return listener }
            if modes.count > 1 {
                warnings.append("Gateway servers on port \(listener.port) disagree on tls.mode; using \(mode.rawValue)")
            }
            if mode != listener.tls {
                warnings.append(
                    "listener port \(listener.port): sluice.yaml says tls \(listener.tls.rawValue), the Gateway server says "
                        + "\(mode.rawValue); the Gateway object wins")
            }
            var applied = ListenerConfig(port: listener.port, protocol: listener.protocol, address: listener.address, tls: mode)
            // One certificate per listener (Sluice does not pick a certificate by SNI): the first server's.
            applied.serverTLSFiles = mode.usesServerFiles ? onPort.first { $0.listenerTLSMode == mode }?.tlsFiles : nil
            return applied
        }
        return (applied, warnings)
    }
}
