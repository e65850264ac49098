import NIOCore
import SluiceCore

/// What a retried exchange needs to dial again.
struct ExchangeRetries {
    var machine: RetryStateMachine
    let target: UpstreamTarget
    let config: ActiveConfig
}

// A VirtualService route's `retries` (or Istio's default policy for a routed request): the
// decisions are RetryStateMachine's (SluiceCore); here, dialling again with what it kept.
extension HTTPProxyHandler {
    /// Arms retries for a routed request whose head is `head` (the forwarded bytes).
    func armRetries(_ exchange: HTTPExchange, route: RouteSelection, method: String, head: ByteBuffer, target: UpstreamTarget,
                    config: ActiveConfig) {
        let policy = route.behaviour.retries ?? RetryPolicy.istioDefault
        guard policy.attempts > 0 else { return }
        exchange.retries = ExchangeRetries(
            machine: RetryStateMachine(policy: policy, method: method, head: head), target: target, config: config)
    }

    /// After a try failed with `outcome`: true when another try was started; when the policy
    /// would retry but its tries are used up, the log gets Envoy's `URX`.
    func retryIfAllowed(_ exchange: HTTPExchange, after outcome: RetryPolicy.Outcome, context: ChannelHandlerContext) -> Bool {
        guard var retries = exchange.retries else { return false }
        let verdict = retries.machine.after(outcome)
        exchange.retries = retries
        switch verdict {
        case .no:
            return false
        case .exhausted:
            exchange.record.responseFlags.insert(.upstreamRetryLimitExceeded)
            return false
        case .retry(let parts):
            self.runtime.metrics.upstreamRetry(cluster: exchange.record.upstreamCluster ?? "")
            if let first = parts.first {
                self.dropUpstream()
                exchange.state.startConnecting(with: first)
                for part in parts.dropFirst() { _ = exchange.state.requestBody(part) }
            }
            self.connect(exchange, target: retries.target, config: retries.config, context: context)
            return true
        }
    }
}

extension UpstreamError {
    /// Envoy's `connect-failure`: no connection was made (refused, timed out, failed
    /// handshake). Resolution failures and an empty endpoint list are not retried.
    var isConnectFailure: Bool {
        switch self {
        case .connectFailed, .connectTimeout, .tlsFailed, .originTLSFailed: return true
        case .resolution, .tunnelRefused, .noHealthyUpstream: return false
        }
    }
}
