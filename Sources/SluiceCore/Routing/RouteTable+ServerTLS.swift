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
    /// port: the Gateway object wins where they differ, with a warning naming both. Where the
    /// servers on a port differ in mode or certificate, the listener carries them all and picks
    /// one per connection by SNI (`ListenerConfig.tlsServers`), as Envoy's filter chains do.
    public func applyingServerTLS(to listeners: [ListenerConfig]) -> (listeners: [ListenerConfig], warnings: [String]) {
        var warnings: [String] = []
        let applied = listeners.map { listener -> ListenerConfig in
            let onPort = servers.compactMap { server -> ListenerTLSServer? in
                guard server.port == listener.port, let mode = server.listenerTLSMode else { return nil }
                return ListenerTLSServer(hosts: server.hostPairs.map(\.host), mode: mode, files: mode.usesServerFiles ? server.tlsFiles : nil)
            }
            guard let first = onPort.first else { return listener }
            if first.mode != listener.tls {
                warnings.append(
                    "listener port \(listener.port): sluice.yaml says tls \(listener.tls.rawValue), the Gateway server says "
                        + "\(first.mode.rawValue); the Gateway object wins")
            }
            var applied = ListenerConfig(port: listener.port, protocol: listener.protocol, address: listener.address, tls: first.mode)
            applied.serverTLSFiles = first.files
            if onPort.contains(where: { $0.mode != first.mode || $0.files != first.files }) {
                applied.tlsServers = onPort
            }
            return applied
        }
        return (applied, warnings)
    }
}
