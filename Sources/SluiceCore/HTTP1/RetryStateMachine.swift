public import NIOCore

/// One request's retries under a route's `RetryPolicy`: which try it is on, and the request
/// bytes kept to send again. Envoy retries only what it still holds: the whole request within
/// its buffer limit. Nothing is kept past `bufferLimit`, and a request whose method is not
/// idempotent is retried only when no byte of it reached an upstream (a connect failure).
public struct RetryStateMachine: Sendable {
    /// Envoy buffers a request for retries up to the connection's buffer limit (1 MiB by
    /// default); Sluice keeps at most this much (a larger request is not retried after it was
    /// sent).
    public static let bufferLimit = 64 * 1024

    public let policy: RetryPolicy
    public let method: String
    /// 1 for the first try.
    public private(set) var attempt = 1
    /// The forwarded head and the body parts (kept apart: a request without a body costs no
    /// array); `overLimit` once they passed `bufferLimit` (then nothing is resent).
    private let head: ByteBuffer
    private var bodyParts: [ByteBuffer] = []
    private var retainedBytes: Int
    private var overLimit: Bool
    private var requestEnded = false

    /// What to do after a try failed.
    public enum Verdict: Equatable {
        /// Try again, sending these bytes (empty for a connect failure: the request is still
        /// queued for the connection being dialled).
        case retry([ByteBuffer])
        /// The failure is one the policy retries, but the tries are used up (Envoy's `URX`).
        case exhausted
        /// Not retried: answer as without a policy.
        case no
    }

    /// Starts with the forwarded head's bytes.
    public init(policy: RetryPolicy, method: String, head: ByteBuffer) {
        self.policy = policy
        self.method = method
        self.head = head
        self.retainedBytes = head.readableBytes
        // A policy that never resends a sent request keeps no body (as if past the limit).
        self.overLimit = head.readableBytes > Self.bufferLimit || !policy.resendsSentRequests
    }

    /// A body part was framed (and sent or queued).
    public mutating func body(_ part: ByteBuffer) {
        guard !self.overLimit else { return }
        self.retainedBytes += part.readableBytes
        if self.retainedBytes > Self.bufferLimit {
            self.overLimit = true
            self.bodyParts = []
        } else {
            self.bodyParts.append(part)
        }
    }

    /// The request's last byte was framed.
    public mutating func ended() { self.requestEnded = true }

    /// After a try failed with `outcome`. A connect failure reached no server: any method is
    /// retried, and the request stays queued. Any other failure happened after bytes were
    /// sent: only an idempotent method's request, kept whole, is sent again.
    public mutating func after(_ outcome: RetryPolicy.Outcome) -> Verdict {
        let neverSent = outcome == .connectFailure
        let idempotent = RetryPolicy.idempotentMethods.contains(self.method.uppercased())
        let whole = self.requestEnded && !self.overLimit
        let bodyAlreadySent = !neverSent && !(idempotent && whole)
        guard self.policy.shouldRetry(after: outcome, attempt: self.attempt, method: self.method, bodyAlreadySent: bodyAlreadySent) else {
            let retriable = self.attempt > 1
                && self.policy.shouldRetry(after: outcome, attempt: 1, method: self.method, bodyAlreadySent: bodyAlreadySent)
            return retriable ? .exhausted : .no
        }
        self.attempt += 1
        return .retry(neverSent ? [] : [self.head] + self.bodyParts)
    }
}
