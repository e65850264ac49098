/// What the sidecar does with a DNS query, from the registry and `dns.unregistered`.
///
/// A name some ServiceEntry registers (on any port) is resolved as usual; under REGISTRY_ONLY
/// any other name is answered locally (NXDOMAIN by default, or REFUSED) or passed on
/// (`unregistered: PASS`), so an unregistered name is neither resolved nor used to tunnel
/// data out through DNS. Under ALLOW_ANY every query passes.
public enum DNSQueryDecision: Sendable, Equatable {
    /// Resolve it (forward upstream, or answer from the registry's addresses).
    case resolve(registeredHost: String?)
    /// Answer locally with this code; nothing leaves the pod.
    case answer(DNSResponseCode)

    /// Decides for a query of `name` (lowercase, no trailing dot).
    public static func decide(
        name: String, registry: Registry, mode: OutboundTrafficPolicyMode, unregistered: DNSConfig.Unregistered
    ) -> DNSQueryDecision {
        if let host = registry.registeredHost(named: name) { return .resolve(registeredHost: host) }
        guard mode == .registryOnly else { return .resolve(registeredHost: nil) }
        switch unregistered {
        case .nxdomain: return .answer(.nameError)
        case .refused: return .answer(.refused)
        case .pass: return .resolve(registeredHost: nil)
        }
    }
}
