import NIOCore
import SluiceCore

// AuthorizationPolicy for HTTP requests at the gateway: Envoy's RBAC HTTP filter, which runs
// before the router, so a denied request gets 403 "RBAC: access denied" whatever its route.
extension HTTPProxyHandler {
    /// Evaluates the request against the gateway's AuthorizationPolicies; on a denial, takes
    /// the record into a denied exchange (answered now if the request announces a body or an
    /// upgrade, else at its end) and returns true. A port whose decision is a silent close has
    /// no HTTP to answer with and is left to the caller.
    func authorizationDenied(
        _ head: HTTP1Head, authority: String, decision: Decision, record: inout AccessLogRecord,
        config: ActiveConfig, context: ChannelHandlerContext
    ) -> Bool {
        guard self.runtime.role == .gateway, !config.authorization.isEmpty else { return false }
        if case .deny = decision.action, decision.denial == .close { return false }
        guard
            let denial = GatewayAuthorization.denial(
                runtime: self.runtime, config: config, connection: self.connection,
                host: authority, method: head.methodString, path: head.string(head.target),
                headers: head.lowercasedHeaders)
        else { return false }
        record.responseCodeDetails = denial.responseCodeDetails
        let exchange = HTTPExchange(phase: .denied, taking: &record, head: head)
        // Envoy RBAC's local reply, answered by respondDenied like any other local answer.
        exchange.routeAnswer = RouteLocalAnswer(status: .forbidden, flag: nil, body: HTTP1LocalReply.rbacDeniedBody, fields: [])
        self.exchange = exchange
        if head.announcesBody || head.requestedUpgrade != nil {
            self.respondDenied(exchange, context: context, closeAfter: true)
        }
        return true
    }
}
