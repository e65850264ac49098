/// The set of registered services, indexed so that a lookup costs the same for ten entries or
/// ten thousand: hosts by dictionary, wildcards by suffix, addresses by prefix length.
///
/// Conflicts (two entries registering the same host or network on the same port) are resolved
/// first-loaded-wins, per protocol family, and reported in `conflicts`.
public struct Registry: Sendable {
    /// Every entry, in load order.
    public let entries: [ServiceEntry]
    /// One warning per host/network + port that an earlier entry already registered.
    public let conflicts: [ConfigDiagnostic]

    private let exactHosts: [HostKey: Candidates]
    /// Keyed by the part after `*.`: `*.example.com` is stored under `example.com`.
    private let wildcardHosts: [HostKey: Candidates]
    /// IPv4 networks, one table per prefix length in use, longest first.
    private let v4Networks: [(prefixLength: Int, table: [V4Key: Candidates])]
    /// IPv6 networks, one table per prefix length in use, longest first.
    private let v6Networks: [(prefixLength: Int, table: [V6Key: Candidates])]
    /// Opaque (and detected) ports of entries without addresses: Istio's 0.0.0.0:port TCP listener.
    private let anyAddressPorts: [Int: Candidates]
    /// Partial wildcards (`*x.example.com`, `*-api.example.com`): Envoy's suffix domains, which
    /// need at least one byte before the suffix. Rare, so scanned.
    private let partialWildcards: [(suffix: String, port: Int, slot: Slot)]
    /// For each port number, the families its wildcard listener serves by name: HTTP ports of
    /// any entry, TLS and detected ports of entries without addresses (Istio's `0.0.0.0:port`).
    private let wildcardFamilies: [Int: ProtocolFamilies]
    /// For each port number, the families declared on it by any entry.
    private let declaredFamilies: [Int: ProtocolFamilies]

    /// An empty registry.
    public init() { self.init([]) }

    /// Indexes `entries`; earlier entries win conflicts.
    public init(_ entries: [ServiceEntry]) {
        self.entries = entries
        var exactHosts: [HostKey: Candidates] = [:]
        var wildcardHosts: [HostKey: Candidates] = [:]
        var v4: [Int: [V4Key: Candidates]] = [:]
        var v6: [Int: [V6Key: Candidates]] = [:]
        var anyAddress: [Int: Candidates] = [:]
        var partial: [(suffix: String, port: Int, slot: Slot)] = []
        var wildcardFamilies: [Int: ProtocolFamilies] = [:]
        var declaredFamilies: [Int: ProtocolFamilies] = [:]
        var conflicts: [ConfigDiagnostic] = []
        func add<Key: Hashable>(_ slot: Slot, _ table: inout [Key: Candidates], _ key: Key, _ what: String) {
            Registry.insert(slot, into: &table, key: key, what: what, entries: entries, conflicts: &conflicts)
        }
        for (entryIndex, entry) in entries.enumerated() {
            let addressed = !entry.addresses.isEmpty
            for (portIndex, port) in entry.ports.enumerated() {
                let family = port.protocol.family
                if family.isEmpty { continue }  // UDP: nothing on TCP
                declaredFamilies[port.number, default: []].formUnion(family)
                if family == .http || !addressed {
                    wildcardFamilies[port.number, default: []].formUnion(family)
                }
                for (hostIndex, host) in entry.hosts.enumerated() {
                    let slot = Slot(entry: entryIndex, port: portIndex, host: hostIndex, family: family, addressed: addressed)
                    let what = "host \(host) port \(port.number)"
                    if host.hasPrefix("*.") {
                        add(slot, &wildcardHosts, HostKey(host: String(host.dropFirst(2)), port: port.number), what)
                    } else if host.hasPrefix("*") {
                        partial.append((String(host.dropFirst()), port.number, slot))
                    } else {
                        add(slot, &exactHosts, HostKey(host: host, port: port.number), what)
                    }
                }
                let slot = Slot(entry: entryIndex, port: portIndex, host: nil, family: family, addressed: addressed)
                for cidr in entry.addresses {
                    let what = "address \(cidr) port \(port.number)"
                    switch cidr.address {
                    case .v4(let network):
                        add(slot, &v4[cidr.prefixLength, default: [:]], V4Key(network: network, port: port.number), what)
                    case .v6(let high, let low):
                        add(slot, &v6[cidr.prefixLength, default: [:]], V6Key(high: high, low: low, port: port.number), what)
                    }
                }
                if !addressed, family == .opaque || family == .detected {
                    add(slot, &anyAddress, port.number,
                        "port \(port.number) on any address (\(port.protocol) port without addresses)")
                }
            }
        }
        self.exactHosts = exactHosts
        self.wildcardHosts = wildcardHosts
        self.v4Networks = v4.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        self.v6Networks = v6.sorted { $0.key > $1.key }.map { ($0.key, $0.value) }
        self.anyAddressPorts = anyAddress
        self.partialWildcards = partial
        self.wildcardFamilies = wildcardFamilies
        self.declaredFamilies = declaredFamilies
        self.conflicts = conflicts
    }

    // MARK: Lookup

    /// The entry that registers `host` (in `Authority`'s normal form) on `port`, whatever the
    /// port's protocol. An exact host beats a wildcard; a longer wildcard suffix beats a shorter one.
    public func lookup(host: String, port: Int) -> RegistryMatch? {
        lookup(host: host, port: port, families: .all)
    }

    /// The entry that registers `host` on `port` with a protocol in `families`.
    ///
    /// `host` is a name in `Authority`'s normal form (lowercase, no port, no trailing dot): parse
    /// a Host, SNI or CONNECT target with `Authority` first. With `addressed: false`, entries that have `addresses` are left out: at a
    /// sidecar their TLS and opaque ports are bound to those addresses, not matched by name.
    /// An exact host beats a wildcard; a longer wildcard suffix beats a shorter one.
    /// Cost: one dictionary probe per label of the host.
    public func lookup(host name: String, port: Int, families: ProtocolFamilies, addressed: Bool = true) -> RegistryMatch? {
        guard !name.isEmpty else { return nil }
        if let slot = exactHosts[HostKey(host: name, port: port)]?.first(in: families, addressed: addressed) {
            return match(slot, via: .exactHost)
        }
        // Walk the suffixes after each dot, longest (most specific) first.
        var found: (slot: Slot, suffixLength: Int)?
        var index = name.startIndex
        while let dot = name[index...].firstIndex(of: ".") {
            let suffix = String(name[name.index(after: dot)...])
            if let slot = wildcardHosts[HostKey(host: suffix, port: port)]?.first(in: families, addressed: addressed) {
                found = (slot, suffix.utf8.count + 1)
                break
            }
            index = name.index(after: dot)
        }
        for partial in partialWildcards where partial.port == port && partial.slot.accepts(families, addressed: addressed) {
            let length = partial.suffix.utf8.count
            if name.utf8.count > length, name.hasSuffix(partial.suffix), length > found?.suffixLength ?? -1 {
                found = (partial.slot, length)
            }
        }
        return found.map { match($0.slot, via: .wildcardHost) }
    }

    /// The families that some entry declares on `port` (any address).
    public func declaredFamilies(port: Int) -> ProtocolFamilies {
        declaredFamilies[port] ?? []
    }

    /// The families that Istio's `0.0.0.0:port` listener serves by name: HTTP ports of any
    /// entry, and TLS or detected ports of entries without addresses.
    public func wildcardFamilies(port: Int) -> ProtocolFamilies {
        wildcardFamilies[port] ?? []
    }

    /// The entry that registers `address` on `port`, whatever the port's protocol.
    public func lookup(address: IPAddress, port: Int) -> RegistryMatch? {
        lookup(address: address, port: port, families: .all)
    }

    /// The entry whose `addresses` contain `address` (longest prefix first) on `port` with a
    /// protocol in `families`; failing that (and unless `anyAddress` is false), an entry without
    /// addresses that declares `port` as an opaque or detected port, as Istio's `0.0.0.0:port`
    /// TCP listener would take it.
    /// Cost: at most one dictionary probe per prefix length in use (≤ 33 or ≤ 129).
    public func lookup(address: IPAddress, port: Int, families: ProtocolFamilies, anyAddress: Bool = true) -> RegistryMatch? {
        switch address.unmappedIPv4 {
        case .v4(let value):
            for (length, table) in v4Networks {
                guard case .v4(let network) = CIDR.mask(.v4(value), length) else { continue }
                if let slot = table[V4Key(network: network, port: port)]?.first(in: families),
                   let cidr = CIDR(address: .v4(network), prefixLength: length) {
                    return match(slot, via: .address(cidr))
                }
            }
        case .v6(let high, let low):
            for (length, table) in v6Networks {
                guard case .v6(let networkHigh, let networkLow) = CIDR.mask(.v6(high, low), length) else { continue }
                if let slot = table[V6Key(high: networkHigh, low: networkLow, port: port)]?.first(in: families),
                   let cidr = CIDR(address: .v6(networkHigh, networkLow), prefixLength: length) {
                    return match(slot, via: .address(cidr))
                }
            }
        }
        if anyAddress, let slot = anyAddressPorts[port]?.first(in: families) {
            return match(slot, via: .anyAddress)
        }
        return nil
    }

    private func match(_ slot: Slot, via: RegistryMatch.MatchKind) -> RegistryMatch {
        let entry = entries[slot.entry]
        let host = slot.host.map { entry.hosts[$0] } ?? entry.hosts.first ?? ""
        return RegistryMatch(entry: entry, port: entry.ports[slot.port], matchedHost: host, matchedBy: via)
    }

    // MARK: Index types

    private struct HostKey: Hashable, Sendable {
        var host: String
        var port: Int
    }

    private struct V4Key: Hashable, Sendable {
        var network: UInt32
        var port: Int
    }

    private struct V6Key: Hashable, Sendable {
        var high: UInt64
        var low: UInt64
        var port: Int
    }

    private struct Slot: Sendable {
        var entry: Int
        var port: Int
        /// Index into the entry's hosts; nil for address matches (which report the first host).
        var host: Int?
        var family: ProtocolFamilies
        /// The entry has `addresses`.
        var addressed: Bool

        func accepts(_ families: ProtocolFamilies, addressed allowAddressed: Bool) -> Bool {
            families.contains(family) && (allowAddressed || !addressed)
        }
    }

    /// The first-loaded slot of each protocol family (with and without addresses) for one key,
    /// in load order.
    private struct Candidates: Sendable {
        var slots: [Slot] = []

        func first(in families: ProtocolFamilies, addressed: Bool = true) -> Slot? {
            slots.first { $0.accepts(families, addressed: addressed) }
        }
    }

    private static func insert<Key: Hashable>(
        _ slot: Slot, into table: inout [Key: Candidates], key: Key, what: String,
        entries: [ServiceEntry], conflicts: inout [ConfigDiagnostic]
    ) {
        var candidates = table[key, default: Candidates()]
        // Only the same kind of port shadows: an HTTP and a TLS registration of one host:port
        // each match their own traffic (Istio would want one protocol a port: a note).
        if let earlier = candidates.slots.first(where: { $0.family == slot.family && $0.addressed == slot.addressed }),
           earlier.entry != slot.entry {
            let winner = entries[earlier.entry]
            let loser = entries[slot.entry]
            conflicts.append(ConfigDiagnostic(
                severity: .warning, path: loser.source.path, line: loser.source.line, resource: loser.resourceName,
                message: "\(what) is already registered by \(winner.resourceName) (\(winner.source)), which was loaded first and wins"))
        } else if let other = candidates.slots.first(where: { $0.entry != slot.entry }) {
            let first = entries[other.entry]
            let later = entries[slot.entry]
            conflicts.append(ConfigDiagnostic(
                severity: .note, path: later.source.path, line: later.source.line, resource: later.resourceName,
                message: "\(what) is also registered by \(first.resourceName) (\(first.source)) for another protocol; each matches its own traffic (Istio allows one protocol a port)"))
        }
        if candidates.slots.contains(where: { $0.entry == slot.entry }) { return }  // same entry, duplicate host
        if !candidates.slots.contains(where: { $0.family == slot.family && $0.addressed == slot.addressed }) {
            candidates.slots.append(slot)
            table[key] = candidates
        }
    }
}

/// Protocol families a lookup accepts: which kinds of port may match the traffic.
public struct ProtocolFamilies: OptionSet, Sendable, Hashable {
    /// The raw bits.
    public let rawValue: UInt8
    /// Creates a set from raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// HTTP, HTTP2, GRPC, GRPC-WEB and HTTP_PROXY ports.
    public static let http = ProtocolFamilies(rawValue: 1)
    /// HTTPS and TLS ports.
    public static let tls = ProtocolFamilies(rawValue: 2)
    /// TCP, MONGO and other opaque ports.
    public static let opaque = ProtocolFamilies(rawValue: 4)
    /// Ports without a protocol: detected per connection.
    public static let detected = ProtocolFamilies(rawValue: 8)
    /// Any port.
    public static let all: ProtocolFamilies = [.http, .tls, .opaque, .detected]
}

/// A registry hit: the entry, the declared port, and what matched.
public struct RegistryMatch: Sendable, Equatable {
    /// How the lookup found the entry.
    public enum MatchKind: Sendable, Equatable {
        /// The host equals one of the entry's hosts.
        case exactHost
        /// The host falls under one of the entry's `*.suffix` hosts.
        case wildcardHost
        /// The address lies in this network from the entry's `addresses`.
        case address(CIDR)
        /// The entry has no addresses and declares the port as opaque TCP, which catches the
        /// port on every address (Istio's `0.0.0.0:port` listener); the weakest kind of match.
        case anyAddress
        /// The entry has no addresses, and the destination is one the pod resolved this name
        /// (one of its hosts) to through the DNS proxy, or that the proxy allocated to it
        /// (`allocated`, `dns.autoAllocate`). Only when the sidecar sees the pod's DNS.
        case resolvedName(String, address: IPAddress, allocated: Bool)
    }

    /// The matching entry.
    public var entry: ServiceEntry
    /// The entry's port that matched the requested port.
    public var port: ServicePort
    /// The entry's host as written (`*.example.com` for a wildcard match), or the entry's first
    /// host for an address match.
    public var matchedHost: String
    /// How it matched.
    public var matchedBy: MatchKind

    /// Creates a match.
    public init(entry: ServiceEntry, port: ServicePort, matchedHost: String, matchedBy: MatchKind) {
        self.entry = entry
        self.port = port
        self.matchedHost = matchedHost
        self.matchedBy = matchedBy
    }

    /// True when the entry was found by a host name (exact or wildcard), not by address.
    public var isHostMatch: Bool {
        switch matchedBy {
        case .exactHost, .wildcardHost: return true
        case .address, .anyAddress, .resolvedName: return false
        }
    }

    /// The concrete name a `.resolvedName` match stands for; nil for other matches.
    public var resolvedName: String? {
        if case .resolvedName(let name, _, _) = matchedBy { return name }
        return nil
    }
}
