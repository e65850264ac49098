import NIOCore
import SluiceCore

/// A local answer decided before forwarding: a route's redirect or refusal, or an
/// AuthorizationPolicy's 403.
struct RouteLocalAnswer {
    var status: LocalStatus
    var flag: ResponseFlags?
    var body: String
    var fields: [(String, String)]

    /// The answer to a refusal the routes decided, for HTTP/1 requests and HTTP/2 streams
    /// alike (nil for the role's default refusal): a redirect with its `Location`, 404 NR for
    /// a VirtualService host none of whose routes matches at a sidecar, 503 NC for a route to
    /// a host with no cluster. `path` (origin form) is read only for a redirect.
    static func forRefusal(
        _ decision: Decision, role: ProxyRole, scheme: String, authority: String, path: @autoclosure () -> String
    ) -> RouteLocalAnswer? {
        guard case .httpStatus(let code) = decision.denial else { return nil }
        if let redirect = decision.route?.behaviour.redirect {
            let location = HTTPRouteOutcome.location(redirect, requestScheme: scheme, host: authority, path: path())
            return RouteLocalAnswer(status: LocalStatus(code: redirect.code), flag: nil, body: "", fields: [("location", location)])
        }
        switch code {
        case 404 where role == .sidecar:
            return RouteLocalAnswer(status: .notFound, flag: .noRouteFound, body: "", fields: [])
        case 503 where decision.route != nil:
            // Envoy's 503 NC (`cluster_not_found`).
            return RouteLocalAnswer(status: .serviceUnavailable, flag: .noClusterFound, body: "", fields: [])
        default:
            return nil
        }
    }
}

// What VirtualService routes ask of a request beyond where it goes: a decision per request
// when the route looks at more than the authority, redirects, route-decided refusals (404 NR,
// 503 NC), fault delay and abort, the route timeout. The pure parts are SluiceCore's
// (`Policy`, `HTTPRouteOutcome`); here, applying them to the exchange.
extension HTTPProxyHandler {
    /// The decision for a request whose cached decision (same authority) depends on more than
    /// the authority, or a fresh one: asked first without the request (what the cache holds),
    /// and again with the request's view when the routes said it matters.
    func decideForRequest(
        _ authority: String, head: borrowing HTTP1Head, destination: IPAddress, port: Int, config: ActiveConfig,
        cached: CachedDecision?
    ) -> CachedDecision? {
        if let cached, let last = cached.lastRouted, let router = cached.decision.requestRouter,
           router.takesRoute(of: last.decision, head) {
            // Same route as the last request under this authority: the same decision.
            return last
        }
        guard let parsed = Authority(authority) else { return nil }
        if let cached {
            let last = cached.lastRouted
            let decision = config.policy.decide(ConnectionFacts(
                kind: .http(parsed), destination: destination, port: port, request: head.requestView, previous: last?.decision))
            if let last, let key = decision.routeKey, key == last.decision.routeKey { return last }
            let made = CachedDecision(authority: authority, host: cached.host, config: config.identity, decision: decision)
            if decision.routeKey != nil { cached.lastRouted = made }
            return made
        }
        let first = config.policy.decide(ConnectionFacts(kind: .http(parsed), destination: destination, port: port))
        let cachedFirst = CachedDecision(authority: authority, host: parsed.host, config: config.identity, decision: first)
        // Cached even when it depends on the request: it tells the next request on this
        // connection to decide with its view at once.
        self.lastDecision = cachedFirst
        guard !first.dependsOnlyOnAuthority else { return cachedFirst }
        let decision = config.policy.decide(ConnectionFacts(kind: .http(parsed), destination: destination, port: port, request: head.requestView))
        return CachedDecision(authority: authority, host: parsed.host, config: config.identity, decision: decision)
    }

    /// The answer to a refusal the routes decided, nil for the role's default refusal.
    func routeAnswer(for decision: Decision, head: borrowing HTTP1Head, authority: String) -> RouteLocalAnswer? {
        RouteLocalAnswer.forRefusal(
            decision, role: self.runtime.role, scheme: "http", authority: authority, path: HTTP1Head.originPath(head.string(head.target)))
    }

    /// Readies a forwarded exchange for what its route asks (retries, response headers, the
    /// route timeout) and applies its fault: true when the fault took the request over.
    /// `announcesBody`: the request has a body still to come (an answer at once then closes
    /// the connection, as a refusal does, rather than wait for bytes the client may hold).
    func applyRoute(_ route: RouteSelectionBox, to exchange: HTTPExchange, method: String, announcesBody: Bool, request: ByteBuffer,
                    target: UpstreamTarget, config: ActiveConfig, context: ChannelHandlerContext) -> Bool {
        // Read in place through the box (a local copy of the behaviour retains all it holds).
        if route.selection.kind == .http {
            self.armRetries(exchange, retries: route.selection.behaviour.retries, method: method, head: request, target: target, config: config)
        }
        if !route.selection.behaviour.responseHeaders.isEmpty {
            exchange.responseHeaders = HeaderEdits(route.selection.behaviour.responseHeaders)
        }
        // Envoy's 0s timeout disables the route timeout: the configured upstream timeout stays.
        exchange.routeTimeout = route.selection.behaviour.timeout.flatMap { $0 > .zero ? TimeAmount($0) : nil }
        guard let fault = route.selection.behaviour.fault else { return false }
        return self.applyFault(fault, exchange: exchange, announcesBody: announcesBody, request: request, target: target, config: config,
                               context: context)
    }

    /// Applies the route's fault to a request about to be forwarded (`request`: its head's
    /// bytes): true when it took the request over (delayed, then forwarded or aborted; aborted).
    private func applyFault(_ fault: HTTPFault, exchange: HTTPExchange, announcesBody: Bool, request: ByteBuffer, target: UpstreamTarget,
                            config: ActiveConfig, context: ChannelHandlerContext) -> Bool {
        let plan = HTTPRouteOutcome.plan(fault, delaySample: Double.random(in: 0..<100), abortSample: Double.random(in: 0..<100))
        guard !plan.isEmpty else { return false }
        // Held as while connecting: body bytes queue behind the head until the upstream is there.
        exchange.state.startConnecting(with: request)
        guard let delay = plan.delay else {
            // Still in the request's head: its end (no body) is framed next.
            self.faultAbort(exchange, status: plan.abortStatus ?? 503, closeAfter: announcesBody, context: context)
            return true
        }
        exchange.record.responseFlags.insert(.delayInjected)
        let bound = NIOLoopBound((handler: self, exchange: exchange), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: TimeAmount(delay)) {
            let (this, exchange) = bound.value
            guard this.exchange === exchange, let context = this.context else { return }
            if let status = plan.abortStatus {
                this.faultAbort(exchange, status: status, closeAfter: !exchange.state.requestEnded, context: context)
            } else {
                this.connect(exchange, target: target, config: config, context: context)
            }
        }
        return true
    }

    /// Envoy's fault filter abort: the status, flag FI, body "fault filter abort".
    private func faultAbort(_ exchange: HTTPExchange, status: Int, closeAfter: Bool, context: ChannelHandlerContext) {
        exchange.state.failed()
        self.respondLocally(
            exchange, status: LocalStatus(code: status), flag: .faultInjected, body: HTTPRouteOutcome.faultAbortBody,
            context: context, closeAfter: closeAfter)
    }
}
