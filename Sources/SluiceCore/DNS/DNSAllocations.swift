/// Istio's DNS auto-allocation (`dns.autoAllocate`): a virtual address from 240.240.0.0/16
/// (and one from 2001:2::/48) for each concrete host of a ServiceEntry without `addresses`
/// and with a resolution other than NONE. The DNS proxy answers the host's A/AAAA queries with
/// them; a TCP connection to one maps back to the host (`host(for:)`), so opaque TCP entries
/// that share a port are told apart without real addresses.
///
/// The algorithm is Istio's legacy `autoAllocateIPs` (pilot/pkg/serviceregistry/serviceentry/
/// auto_allocation.go): FNV-1a 32 of `namespace/host`, its remainder mod 256×254 picks a slot,
/// collisions probe by double hashing (prime 65011), then the slots in order get 240.240.x.y
/// skipping .0/.255-ending numbers, so a host keeps its address whatever else is registered
/// unless it collides. Wildcard hosts and resolution NONE get nothing (Istio: the original
/// destination would be lost). Istio prints the IPv6 address as `2001:2::f0f0:%x%x` of the
/// last two octets, which can give two hosts one address (240.240.1.5 and 240.240.0.21 are
/// both `2001:2::f0f0:15`): the later host then gets no IPv6 address, so every allocated
/// address names exactly one host. Pure.
public struct DNSAllocations: Sendable, Equatable {
    /// One host's addresses.
    public struct Allocation: Sendable, Equatable {
        /// The concrete host (lowercase).
        public var host: String
        /// Its address in 240.240.0.0/16.
        public var ipv4: IPAddress
        /// Its address in 2001:2::/48; nil when Istio's text form collided with another host's.
        public var ipv6: IPAddress?
    }

    /// Every allocation, sorted by host.
    public let allocations: [Allocation]
    private let byHost: [String: Int]
    private let byAddress: [IPAddress: Int]

    /// No allocations.
    public init() { self.init(allocations: []) }

    /// Allocates for the hosts of `entries` (in order: the first entry naming a host wins).
    public init(entries: [ServiceEntry]) {
        var keys: [(host: String, key: String)] = []
        var seen: Set<String> = []
        for entry in entries where entry.addresses.isEmpty && entry.resolution != .none {
            for host in entry.hosts where !host.hasPrefix("*") && seen.insert(host).inserted {
                keys.append((host, "\(entry.namespace)/\(host)"))
            }
        }
        self.init(allocations: Self.allocate(keys))
    }

    /// Allocates for the entries of `registry`.
    public init(registry: Registry) { self.init(entries: registry.entries) }

    private init(allocations: [Allocation]) {
        self.allocations = allocations.sorted { $0.host < $1.host }
        var byHost: [String: Int] = [:]
        var byAddress: [IPAddress: Int] = [:]
        for (index, allocation) in self.allocations.enumerated() {
            byHost[allocation.host] = index
            byAddress[allocation.ipv4] = index
            if let ipv6 = allocation.ipv6 { byAddress[ipv6] = index }
        }
        self.byHost = byHost
        self.byAddress = byAddress
    }

    /// True when nothing is allocated.
    public var isEmpty: Bool { allocations.isEmpty }

    /// The addresses allocated to `host` (exact, lowercase).
    public func allocation(forHost host: String) -> Allocation? {
        byHost[host].map { allocations[$0] }
    }

    /// The host `address` was allocated to.
    public func host(for address: IPAddress) -> String? {
        byAddress[address.unmappedIPv4].map { allocations[$0].host }
    }

    static let slots = 256 * 254
    static let prime: UInt32 = 65011

    /// Istio's slot assignment and numbering, for `(host, key)` pairs in order.
    static func allocate(_ keys: [(host: String, key: String)]) -> [Allocation] {
        var slots = [Int?](repeating: nil, count: Self.slots)
        let count = UInt32(Self.slots)
        for (index, item) in keys.enumerated().prefix(Self.slots) {
            let hash = fnv1a32(item.key)
            let first = Int(hash % count)
            if slots[first] == nil {
                slots[first] = index
                continue
            }
            let step = prime - hash % prime
            // Istio probes without bound; this stops after as many probes as there are slots.
            for probe in 1...UInt32(Self.slots) {
                let next = Int((hash &+ probe &* step) % (count - 1))
                if slots[next] == nil {
                    slots[next] = index
                    break
                }
            }
        }
        var result: [Allocation] = []
        var takenV6: Set<IPAddress> = []
        var x = 0
        for slot in slots {
            x += 1
            guard let index = slot else { continue }
            if x % 255 == 0 { x += 1 }
            let third = x / 255
            let fourth = x % 255
            let ipv4 = IPAddress.v4(0xF0F0_0000 | UInt32(third) << 8 | UInt32(fourth))
            let text = third == 0
                ? "2001:2::f0f0:\(String(fourth, radix: 16))"
                : "2001:2::f0f0:\(String(third, radix: 16))\(String(fourth, radix: 16))"
            let ipv6 = IPAddress(text).flatMap { takenV6.insert($0).inserted ? $0 : nil }
            result.append(Allocation(host: keys[index].host, ipv4: ipv4, ipv6: ipv6))
        }
        return result
    }

    /// FNV-1a, 32 bits (Go's hash/fnv New32a).
    static func fnv1a32(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return hash
    }
}
