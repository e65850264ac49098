import SluiceCore

// AuthorizationPolicy on the gateway's CONNECT listener: the CONNECT is an HTTP request to
// Envoy's RBAC filter, so the operation is its authority's host (`hosts`, the port ignored as
// for any Host), method `CONNECT` (no path: a CONNECT has none) and its headers; `ports` and
// `destination.port` are the port the connection arrived on, as Istio defines them.
extension ConnectServerHandler {
    /// The denial of this CONNECT, or nil to let it through (logged and counted either way).
    func authorizationDenial(_ head: HTTP1Head, target: String, config: ActiveConfig) -> AuthorizationDecision? {
        guard self.runtime.role == .gateway, !config.authorization.isEmpty else { return nil }
        return GatewayAuthorization.denial(
            runtime: self.runtime, config: config, connection: self.connection,
            host: target, method: head.methodString, path: "", headers: head.lowercasedHeaders)
    }
}
