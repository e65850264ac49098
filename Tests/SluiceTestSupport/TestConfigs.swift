/// The sluice.yaml snippets most tests start from.
public enum TestConfig {
    /// Only registered destinations (Istio's `outboundTrafficPolicy.mode: REGISTRY_ONLY`).
    public static let registryOnly = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"
    /// Unregistered destinations pass through (`ALLOW_ANY`).
    public static let allowAny = "outboundTrafficPolicy: {mode: ALLOW_ANY}\n"

    /// `base` with a `limits:` block (e.g. `"upstreamTimeout: 300ms"`).
    public static func with(_ base: String, limits: String) -> String {
        base + "limits: {\(limits)}\n"
    }
}
