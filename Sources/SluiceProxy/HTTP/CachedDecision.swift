import SluiceCore

/// A connection's last decision and what it was made from (one object: reading it per
/// request costs one retain, not a copy of every field).
final class CachedDecision {
    let authority: String
    let host: String
    let config: ConfigIdentity
    let decision: Decision
    /// The last request-dependent decision made under this one (same authority and
    /// configuration): handed to the policy as `ConnectionFacts.previous`, and given back
    /// as it is when the next request takes the same route.
    var lastRouted: CachedDecision?

    init(authority: String, host: String, config: ConfigIdentity, decision: Decision) {
        self.authority = authority
        self.host = host
        self.config = config
        self.decision = decision
    }
}
