/// What the sidecar knows about destination addresses when its DNS proxy sees the pod's DNS
/// (`dns.proxy`, `--capture-dns`): the name each address was resolved from, and the
/// addresses it allocated itself (`dns.autoAllocate`).
///
/// With it, an opaque (or undeclared) port of an entry without `addresses` no longer matches
/// every address (Istio's `0.0.0.0:port` listener): it matches where the pod resolved one of
/// the entry's hosts, or at the host's allocated address, as Istio binds such an entry to its
/// auto-allocated VIP when its DNS proxy captures. Anywhere else the port is unregistered.
public struct ResolvedNames: Sendable {
    /// The name the pod resolved `address` from (the learned-address table), if still valid.
    public var learned: @Sendable (IPAddress) -> String?
    /// The DNS proxy's own addresses (empty unless `dns.autoAllocate`).
    public var allocations: DNSAllocations

    /// Creates the view.
    public init(allocations: DNSAllocations = DNSAllocations(), learned: @escaping @Sendable (IPAddress) -> String?) {
        self.allocations = allocations
        self.learned = learned
    }
}

extension Policy {
    /// Turns on enforcement by resolved names (see `ResolvedNames`); with `autoAllocate`, the
    /// visible registry's hosts get Istio's allocated addresses.
    public mutating func resolveNames(autoAllocate: Bool, learned: @escaping @Sendable (IPAddress) -> String?) {
        resolvedNames = ResolvedNames(
            allocations: autoAllocate ? DNSAllocations(registry: registry) : DNSAllocations(), learned: learned)
    }

    /// The entry that takes `destination:port` for `families` by address: its `addresses`;
    /// then, without resolved names, an entry without addresses on that port (any address);
    /// with them, the entry of the host allocated that address or the pod resolved it from.
    func lookup(address destination: IPAddress, port: Int, families: ProtocolFamilies) -> RegistryMatch? {
        guard let names = resolvedNames else { return registry.lookup(address: destination, port: port, families: families) }
        if let match = registry.lookup(address: destination, port: port, families: families, anyAddress: false) { return match }
        let byName = families.intersection([.opaque, .detected])
        guard !byName.isEmpty else { return nil }
        let allocatedTo = names.allocations.host(for: destination)
        guard let name = allocatedTo ?? names.learned(destination),
              var match = registry.lookup(host: name, port: port, families: byName, addressed: false)
        else { return nil }
        match.matchedBy = .resolvedName(name, address: destination, allocated: allocatedTo != nil)
        return match
    }

    /// Why an address that an entry without addresses would take on every address is not
    /// taken here: nil when resolved names are off or no such entry declares the port.
    func resolvedNamesNote(destination: IPAddress, port: Int, families: ProtocolFamilies) -> String? {
        guard resolvedNames != nil,
              let wide = registry.lookup(address: destination, port: port, families: families),
              wide.matchedBy == .anyAddress
        else { return nil }
        return "\(Policy.describe(wide)) without the DNS proxy; with it, only at addresses the pod resolved from \(wide.entry.hosts.joined(separator: ", ")) through it, and \(destination) is not one"
    }
}
