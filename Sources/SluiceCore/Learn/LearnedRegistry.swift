/// The ServiceEntries that would have allowed the observed traffic: one per host name (or per
/// `*.parent` when hosts are folded) and one per address, sorted so that two runs over
/// similar logs differ only where the traffic did.
///
/// - HTTP on port P: a port `{number: P, name: http-P, protocol: HTTP}`; TLS with an SNI:
///   `tls-P`, `TLS` (matched by SNI; Sluice cannot tell HTTPS from other TLS).
/// - Names get `resolution: DNS` (the sidecar resolves the name, so a spoofed Host cannot
///   reach another IP); folded `*.parent` entries get `resolution: NONE`, as Istio requires of
///   a wildcard without endpoints.
/// - Addresses (opaque TCP, TLS without SNI, a Host or tunnel that is an IP) get
///   `addresses: [ip/32]` (or `/128`), `resolution: NONE`, and a TCP port, or HTTP/TLS when
///   that is all the address saw.
/// - A name used as HTTP and as TLS on the same port gets a second entry (`NAME-tls`) for the
///   TLS port: one entry cannot declare a port twice, and declaring it TCP instead would take
///   that port on every address. Both match (lookups are per protocol family), but `sluice
///   check` warns that the second registers the host and port again.
public struct LearnedRegistry: Sendable, Equatable {
    /// Choices of `sluice learn`.
    public struct Options: Sendable, Equatable {
        /// Fold hosts under a parent shared by more than this many distinct hosts; nil: never.
        public var foldThreshold: Int?
        /// Leave out ports used fewer times than this (after folding).
        public var minCount: Int
        /// Names that must not be reused (the existing registry's, in namespace `default`).
        public var takenNames: Set<String>

        /// Options; the defaults fold nothing and keep everything.
        public init(foldThreshold: Int? = nil, minCount: Int = 1, takenNames: Set<String> = []) {
            self.foldThreshold = foldThreshold
            self.minCount = minCount
            self.takenNames = takenNames
        }
    }

    /// One port of a learned entry, with what the logs said about it.
    public struct Port: Sendable, Equatable {
        /// The port number dialled.
        public var number: Int
        /// The protocol the entry declares.
        public var `protocol`: PortProtocol
        /// How often and when.
        public var usage: ObservedTraffic.Usage

        /// `http-80`, `tls-443`, `tcp-5432`.
        public var name: String { "\(self.protocol.description.lowercased())-\(number)" }
    }

    /// One ServiceEntry to write.
    public struct Entry: Sendable, Equatable {
        /// `metadata.name`.
        public var name: String
        /// `spec.hosts`: the name, the wildcard, or a placeholder name for an address entry.
        public var hosts: [String]
        /// `spec.addresses`: the one address of an address entry.
        public var addresses: [CIDR]
        /// `spec.resolution`.
        public var resolution: ServiceEntry.Resolution
        /// `spec.ports`, by number.
        public var ports: [Port]
        /// For a wildcard entry, the hosts seen that it stands for, sorted.
        public var foldedHosts: [String]
    }

    /// The entries, in output order: names (grouped by domain, read from the right), then
    /// addresses (IPv4, then IPv6, numerically).
    public var entries: [Entry]
    /// Ports left out by `minCount`.
    public var portsBelowMinCount: Int

    /// Builds the entries for `traffic`.
    public init(_ traffic: ObservedTraffic, options: Options = Options()) {
        var hostPorts: [String: ObservedTraffic.Ports] = [:]
        var addressPorts: [IPAddress: ObservedTraffic.Ports] = [:]
        for (destination, ports) in traffic.destinations {
            switch destination {
            case .host(let host): hostPorts[host] = ports
            case .address(let address): addressPorts[address] = ports
            }
        }
        let folds = options.foldThreshold.map { HostFolding.wildcards(for: Set(hostPorts.keys), threshold: $0) } ?? [:]

        // Group hosts under their wildcard (or themselves), adding up the ports' usage.
        var groups: [String: (ports: ObservedTraffic.Ports, members: [String])] = [:]
        for (host, ports) in hostPorts {
            let key = folds[host] ?? host
            var group = groups[key] ?? ([:], [])
            for (port, uses) in ports {
                for (use, usage) in uses { group.ports[port, default: [:]][use, default: .init()].add(usage) }
            }
            if folds[host] != nil { group.members.append(host) }
            groups[key] = group
        }

        var names = NameAllocator(taken: options.takenNames)
        var dropped = 0
        var entries: [Entry] = []
        for key in groups.keys.sorted(by: { Self.domainOrder($0) < Self.domainOrder($1) }) {
            guard let group = groups[key] else { continue }
            let isWildcard = key.hasPrefix("*.")
            var main: [Port] = []
            var tlsBesideHTTP: [Port] = []
            for number in group.ports.keys.sorted() {
                guard let uses = group.ports[number] else { continue }
                if let http = uses[.http] {
                    if http.count >= options.minCount { main.append(Port(number: number, protocol: .http, usage: http)) } else { dropped += 1 }
                }
                if let tls = uses[.tls] {
                    guard tls.count >= options.minCount else {
                        dropped += 1
                        continue
                    }
                    let port = Port(number: number, protocol: .tls, usage: tls)
                    if uses[.http] != nil, main.contains(where: { $0.number == number }) {
                        tlsBesideHTTP.append(port)
                    } else {
                        main.append(port)
                    }
                }
            }
            let resolution: ServiceEntry.Resolution = isWildcard ? .none : .dns
            let baseName = isWildcard ? "wildcard" + key.dropFirst() : key
            let members = group.members.sorted()
            if !main.isEmpty {
                entries.append(Entry(name: names.claim(baseName), hosts: [key], addresses: [], resolution: resolution,
                                     ports: main, foldedHosts: members))
            }
            if !tlsBesideHTTP.isEmpty {
                entries.append(Entry(name: names.claim(baseName + "-tls"), hosts: [key], addresses: [],
                                     resolution: resolution, ports: tlsBesideHTTP, foldedHosts: members))
            }
        }

        for address in addressPorts.keys.sorted(by: Self.addressOrder) {
            guard let ports = addressPorts[address], let cidr = CIDR(address: address, prefixLength: address.bitWidth) else { continue }
            var declared: [Port] = []
            for number in ports.keys.sorted() {
                guard let uses = ports[number] else { continue }
                var usage = ObservedTraffic.Usage()
                for use in uses.values { usage.add(use) }
                guard usage.count >= options.minCount else {
                    dropped += 1
                    continue
                }
                // One way of use keeps its protocol; several become TCP, which takes them all
                // and, with `addresses`, only at this address.
                let proto: PortProtocol = uses.count == 1 ? (uses.keys.first.map(Self.portProtocol) ?? .tcp) : .tcp
                declared.append(Port(number: number, protocol: proto, usage: usage))
            }
            guard !declared.isEmpty else { continue }
            let label = Self.addressLabel(address)
            entries.append(Entry(name: names.claim(label), hosts: [label + ".sluice.internal"], addresses: [cidr],
                                 resolution: .none, ports: declared, foldedHosts: []))
        }
        self.entries = entries
        self.portsBelowMinCount = dropped
    }

    private static func portProtocol(_ use: ObservedTraffic.PortUse) -> PortProtocol {
        switch use {
        case .http: return .http
        case .tls: return .tls
        case .tcp: return .tcp
        }
    }

    /// `api.example.com` sorts as `com.example.api`, so a domain's hosts (and its wildcard,
    /// `*` sorting before letters and digits) stay together.
    static func domainOrder(_ host: String) -> String {
        host.split(separator: ".", omittingEmptySubsequences: false).reversed().joined(separator: ".")
    }

    /// IPv4 before IPv6, then numerically.
    static func addressOrder(_ a: IPAddress, _ b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): return x < y
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let xh, let xl), .v6(let yh, let yl)): return (xh, xl) < (yh, yl)
        }
    }

    /// A DNS label for an address: `ip-192-0-2-10`, `ip-2001-db8--1`. The entry's placeholder
    /// host and name (a ServiceEntry needs a host even when it matches by address).
    static func addressLabel(_ address: IPAddress) -> String {
        var text = "ip-" + String(address.description.map { $0 == "." || $0 == ":" ? "-" : $0 })
        if text.hasSuffix("-") { text += "0" }  // `2001:db8::` would end in a hyphen
        return text
    }
}

/// Hands out `metadata.name`s that are unique in the output and not already in the registry.
private struct NameAllocator {
    var taken: Set<String>

    init(taken: Set<String>) { self.taken = taken }

    mutating func claim(_ wanted: String) -> String {
        var name = wanted
        var suffix = 2
        while taken.contains(name) {
            name = "\(wanted)-\(suffix)"
            suffix += 1
        }
        taken.insert(name)
        return name
    }
}
