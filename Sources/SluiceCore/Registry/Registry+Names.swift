/// Name and UDP queries on the registry, for the DNS and UDP paths.
extension Registry {
    /// The host entry (as written: exact or `*.` wildcard) that registers `name` on any port,
    /// if one does. Exact hosts win over wildcards, longer wildcards over shorter.
    public func registeredHost(named name: String) -> String? {
        var best: (host: String, score: Int)?
        for entry in entries {
            for host in entry.hosts where Registry.hostPattern(host, matches: name) {
                let score = host == name ? Int.max : host.utf8.count
                if score > best?.score ?? -1 { best = (host, score) }
            }
        }
        return best?.host
    }

    /// The entry registering `name` with a Sluice `protocol: UDP` port `port`. (QUIC to a host
    /// registered with HTTPS or TLS on 443 is decided by its SNI: `UDPFlowPolicy.decideQUIC`.)
    public func udpPort(host name: String, port: Int) -> (entry: ServiceEntry, port: ServicePort)? {
        for entry in entries {
            guard entry.hosts.contains(where: { Registry.hostPattern($0, matches: name) }) else { continue }
            if let candidate = entry.ports.first(where: { $0.number == port && $0.protocol == .other("UDP") }) {
                return (entry, candidate)
            }
        }
        return nil
    }

    /// The entries whose `addresses` contain `address` with a UDP port `port`.
    public func udpPort(address: IPAddress, port: Int) -> (entry: ServiceEntry, port: ServicePort)? {
        let address = address.unmappedIPv4
        for entry in entries where entry.addresses.contains(where: { $0.contains(address) }) {
            if let candidate = entry.ports.first(where: { $0.number == port && $0.protocol == .other("UDP") }) {
                return (entry, candidate)
            }
        }
        return nil
    }

    static func hostPattern(_ pattern: String, matches name: String) -> Bool {
        if pattern == name || pattern == "*" { return true }
        return pattern.hasPrefix("*.") && name.hasSuffix(pattern.dropFirst(1)) && name.utf8.count > pattern.utf8.count - 1
    }
}

extension Registry {
    /// The addresses the registry itself gives for `name` (exact hosts only): an entry's
    /// single-address `addresses` (a /32 or /128), else its STATIC endpoints that are IP
    /// literals. Empty when the name must be resolved upstream. For the DNS proxy.
    public func staticAddresses(forName name: String) -> [IPAddress] {
        var found: [IPAddress] = []
        for entry in entries where entry.hosts.contains(name) {
            let single = entry.addresses.filter { $0.prefixLength == $0.address.bitWidth }.map(\.address)
            if !single.isEmpty {
                found += single
            } else if entry.resolution == .static {
                found += entry.endpoints.compactMap { IPAddress($0.address) }
            }
        }
        var seen: Set<IPAddress> = []
        return found.filter { seen.insert($0).inserted }
    }
}
