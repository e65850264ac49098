import NIOCore
import SluiceCore

/// What a retried exchange needs to dial again.
struct ExchangeRetries {
    var machine: RetryStateMachine
    let target: UpstreamTarget
    let config: ActiveConfig
    /// Envoy's wait before each retry (25 ms base, 250 ms max, fully jittered).
    var backOff = RetryBackOff()
}

// A VirtualService route's `retries` (or Istio's default policy for a routed request): the
// decisions are RetryStateMachine's (SluiceCore); here, dialling again with what it kept.
extension HTTPProxyHandler {
    /// Arms retries for a routed request whose head is `head` (the forwarded bytes).
    func armRetries(_ exchange: HTTPExchange, retries: RetryPolicy?, method: String, head: ByteBuffer, target: UpstreamTarget,
                    config: ActiveConfig) {
        let policy = retries ?? RetryPolicy.istioDefault
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
            // DestinationRule maxRetries: past it the failure is answered as it is.
            guard self.clusterAdmitsRetry(exchange) else { return false }
            self.runtime.metrics.upstreamRetry(cluster: exchange.record.upstreamCluster ?? "")
            exchange.perTryTimer?.cancel()
            exchange.perTryTimer = nil
            if let first = parts.first {
                self.dropUpstream()
                exchange.state.startConnecting(with: first)
                for part in parts.dropFirst() { _ = exchange.state.requestBody(part) }
            }
            let wait = retries.backOff.next(sample: Double.random(in: 0..<1))
            exchange.retries = retries
            let (target, config) = (retries.target, retries.config)
            let bound = NIOLoopBound((handler: self, exchange: exchange), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: TimeAmount(wait)) {
                let (handler, exchange) = bound.value
                guard handler.exchange === exchange, let context = handler.context else { return }
                handler.connect(exchange, target: target, config: config, context: context)
            }
            return true
        }
    }
}

extension HTTPProxyHandler {
    /// Arms the route's perTryTimeout for the try just sent: when it passes before the
    /// response head, the try is abandoned and retried as a reset is; without a retry left the
    /// answer is the route timeout's 504 UT (Envoy's router, onPerTryTimeout).
    func armPerTryTimeout(_ exchange: HTTPExchange, context: ChannelHandlerContext) {
        exchange.perTryTimer?.cancel()
        guard let perTry = exchange.retries?.machine.policy.perTryTimeout, perTry > .zero else { return }
        let timeout = TimeAmount(perTry)
        let bound = NIOLoopBound((handler: self, exchange: exchange), eventLoop: context.eventLoop)
        exchange.perTryTimer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, exchange) = bound.value
            exchange.perTryTimer = nil
            guard handler.exchange === exchange, !exchange.state.responseStarted, exchange.state.phase == .forwarding,
                  let context = handler.context
            else { return }
            handler.runtime.logger.info(
                "upstream per-try timeout", metadata: ["authority": "\(exchange.record.authority ?? "-")",
                                                       "after_ms": "\(timeout.nanoseconds / 1_000_000)"])
            handler.clusterTryOutcome(exchange, .status(504))
            if handler.retryIfAllowed(exchange, after: .reset, context: context) { return }
            handler.upstreamTimedOut(exchange, after: timeout)
        }
    }
}

extension UpstreamError {
    /// Envoy's `connect-failure`: no connection was made (refused, timed out, failed
    /// handshake). Resolution failures and an empty endpoint list are not retried.
    var isConnectFailure: Bool {
        switch self {
        case .connectFailed, .connectTimeout, .tlsFailed, .originTLSFailed: return true
        case .resolution, .tunnelRefused, .noHealthyUpstream, .overflow: return false
        }
    }
}
