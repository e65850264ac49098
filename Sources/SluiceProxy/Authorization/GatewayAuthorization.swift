import Logging
import NIOCore
import SluiceCore

/// AuthorizationPolicy at the gateway for a TLS or TCP connection: the connection's
/// attributes (the caller's principal from its verified mTLS certificate, its address, the
/// port it arrived on, the SNI) against the policies that select the gateway. Dry-run and
/// AUDIT outcomes are logged and counted; a denial is returned for the caller to close on.
enum GatewayAuthorization {
    /// The denial for this connection, or nil to let it through.
    static func denial(
        runtime: ProxyRuntime, config: ActiveConfig, connection: DownstreamConnection, serverName: String?
    ) -> AuthorizationDecision? {
        decide(runtime: runtime, config: config, connection: connection, serverName: serverName, http: nil)
    }

    /// The denial for one HTTP request at the gateway, or nil to let it through: for the HTTP
    /// path, which answers a denial with 403 "RBAC: access denied" and logs
    /// `response_code_details` = `decision.responseCodeDetails`. `headers` lower-case names.
    static func denial(
        runtime: ProxyRuntime, config: ActiveConfig, connection: DownstreamConnection,
        host: String, method: String, path: String, headers: [String: String]
    ) -> AuthorizationDecision? {
        decide(
            runtime: runtime, config: config, connection: connection, serverName: nil,
            http: .init(host: host, method: method, path: path, headers: headers))
    }

    private static func decide(
        runtime: ProxyRuntime, config: ActiveConfig, connection: DownstreamConnection, serverName: String?,
        http: AuthorizationRequest.HTTP?
    ) -> AuthorizationDecision? {
        guard runtime.role == .gateway, !config.authorization.isEmpty else { return nil }
        let request = AuthorizationRequest(
            principal: connection.peerIdentity?.principal,
            sourceIP: connection.remote?.sluiceIPAddress,
            destinationPort: connection.destinationPort,
            sni: serverName,
            http: http)
        let decision = config.authorization.authorize(request)
        record(decision, runtime: runtime, connection: connection, serverName: serverName)
        return decision.allowed ? nil : decision
    }

    /// Logs and counts a decision.
    static func record(_ decision: AuthorizationDecision, runtime: ProxyRuntime, connection: DownstreamConnection, serverName: String?) {
        let metrics = runtime.authorizationMetrics
        for name in decision.shadowDenied {
            metrics.count("shadow_denied", policy: name)
            runtime.logger.notice("dry-run AuthorizationPolicy would deny", metadata: Self.metadata(name, connection, serverName))
        }
        for name in decision.audited {
            metrics.count("audited", policy: name)
            runtime.logger.info("AuthorizationPolicy AUDIT matched", metadata: Self.metadata(name, connection, serverName))
        }
        if decision.allowed {
            metrics.count("allowed", policy: decision.matchedPolicy ?? "none")
        } else {
            metrics.count("denied", policy: decision.matchedPolicy ?? "none")
            var metadata = Self.metadata(decision.matchedPolicy ?? "none", connection, serverName)
            metadata["response_code_details"] = "\(decision.responseCodeDetails ?? "-")"
            runtime.logger.info("RBAC: access denied", metadata: metadata)
        }
    }

    private static func metadata(_ policy: String, _ connection: DownstreamConnection, _ serverName: String?) -> Logger.Metadata {
        [
            "policy": "\(policy)", "principal": "\(connection.peerIdentity?.principal ?? "-")",
            "downstream_remote_address": "\(connection.remoteText ?? "-")",
            "downstream_local_address": "\(connection.destinationText)", "requested_server_name": "\(serverName ?? "-")",
        ]
    }
}
