/// The address → hostname table filled from the DNS answers the pod receives: which name an
/// address was resolved from, until when. The UDP policy asks it where a datagram goes; the
/// TCP path logs opaque connections with the name.
///
/// Bounded: at most `capacity` addresses; when full, the entry that expires first makes room.
/// TTLs are held between `minimumTTL` and `maximumTTL` seconds (`dns.learnedTTLFloor` and
/// `dns.learnedTTLCap`): a floor so that a 0-second TTL still lets the app connect right
/// after resolving, a cap so that a name's address does not stay allowed for days. Pure: the
/// caller passes the time (seconds on a monotonic clock).
public struct LearnedAddresses: Sendable {
    /// One learned address.
    public struct Entry: Sendable, Equatable {
        /// The name the app asked for (the start of the CNAME chain), lowercase.
        public var hostname: String
        /// When the entry stops counting, in the caller's clock seconds.
        public var expiresAt: UInt64
    }

    /// The floor when the config sets none (`dns.learnedTTLFloor`), in seconds.
    public static let defaultMinimumTTL: UInt32 = 30
    /// The cap when the config sets none (`dns.learnedTTLCap`), in seconds.
    public static let defaultMaximumTTL: UInt32 = 3600

    /// Most addresses held.
    public let capacity: Int
    /// Shortest time an answer is kept, in seconds.
    public private(set) var minimumTTL: UInt32
    /// Longest time an answer is kept, in seconds.
    public private(set) var maximumTTL: UInt32
    private var entries: [IPAddress: Entry] = [:]
    /// Counts changes to `entries` and the bounds, for `lastLearned`.
    private var generation: UInt64 = 0
    /// The last answer learned, when, and the `generation` it left: the same answer learned
    /// again within the same second, with nothing changed since, would write the very same
    /// entries, so it is skipped (the DNS proxy learns each cache hit; a busy name is hit
    /// thousands of times a second).
    private var lastLearned: (learnable: DNSLearnable, cap: UInt32, now: UInt64, generation: UInt64)?

    /// Creates an empty table.
    public init(capacity: Int = 4096, minimumTTL: UInt32 = defaultMinimumTTL, maximumTTL: UInt32 = defaultMaximumTTL) {
        self.capacity = max(1, capacity)
        self.minimumTTL = minimumTTL
        self.maximumTTL = max(minimumTTL, maximumTTL)
    }

    /// Creates an empty table with the bounds `config` sets.
    public init(capacity: Int = 4096, _ config: DNSConfig) {
        self.init(capacity: capacity, minimumTTL: config.learnedTTLFloor, maximumTTL: config.learnedTTLCap)
    }

    /// Takes new bounds (a reloaded config) for what is learned from now on; entries already
    /// held keep their expiry.
    public mutating func setTTLBounds(_ config: DNSConfig) {
        minimumTTL = config.learnedTTLFloor
        maximumTTL = max(config.learnedTTLFloor, config.learnedTTLCap)
        generation &+= 1
    }

    /// How many addresses are held (expired ones included until they are looked up or pushed out).
    public var count: Int { entries.count }

    /// The name `address` was learned from, if that has not expired at `now`.
    public func hostname(for address: IPAddress, now: UInt64) -> String? {
        guard let entry = entries[address.unmappedIPv4], entry.expiresAt > now else { return nil }
        return entry.hostname
    }

    /// The live entries at `now`, sorted by address text (for config_dump and explain).
    public func snapshot(now: UInt64) -> [(address: IPAddress, entry: Entry)] {
        entries.filter { $0.value.expiresAt > now }
            .map { (address: $0.key, entry: $0.value) }
            .sorted { $0.address.description < $1.address.description }
    }

    /// Learns `address` for `hostname` for `ttl` seconds (clamped) from `now`.
    public mutating func learn(_ address: IPAddress, hostname: String, ttl: UInt32, now: UInt64) {
        let key = address.unmappedIPv4
        let kept = UInt64(min(max(ttl, minimumTTL), maximumTTL))
        let entry = Entry(hostname: hostname, expiresAt: now + kept)
        if entries[key] == nil, entries.count >= capacity {
            if let expired = entries.first(where: { $0.value.expiresAt <= now })?.key {
                entries[expired] = nil
            } else if let soonest = entries.min(by: { $0.value.expiresAt < $1.value.expiresAt })?.key {
                entries[soonest] = nil
            }
        }
        entries[key] = entry
        generation &+= 1
    }

    /// Learns every address a response gives for its question's name, following the CNAME
    /// chain (`a` CNAME `b`, `b` A 192.0.2.1 teaches 192.0.2.1 → `a`). Returns the addresses learned.
    @discardableResult
    public mutating func learn(from response: DNSMessage, now: UInt64) -> [IPAddress] {
        let learnable = DNSLearnable(response)
        learn(learnable, now: now)
        return learnable.addresses.map { $0.address }
    }

    /// Learns `learnable`'s addresses, their TTLs capped at `cap` seconds (what a cached
    /// answer has left).
    public mutating func learn(_ learnable: DNSLearnable, cappedAt cap: UInt32 = .max, now: UInt64) {
        if let last = lastLearned, last.generation == generation, last.now == now, last.cap == cap,
           last.learnable.teachesTheSame(as: learnable) {
            return
        }
        for (address, ttl) in learnable.addresses {
            learn(address, hostname: learnable.hostname, ttl: min(ttl, cap), now: now)
        }
        // More addresses than the table holds push each other out: learning them again is
        // not a repeat.
        lastLearned = learnable.addresses.count <= capacity ? (learnable, cap, now, generation) : nil
    }
}

/// What a response teaches the learned-address table: the addresses it gives for its
/// question's name, through the CNAME chain, with their TTLs. Worked out once per cached
/// answer, so that a cache hit learns without walking the records again.
public struct DNSLearnable: Sendable {
    /// The name the app asked for.
    public let hostname: String
    /// The addresses, with their record TTLs.
    public let addresses: [(address: IPAddress, ttl: UInt32)]

    /// True when `other` names the same host and the same addresses with the same TTLs.
    func teachesTheSame(as other: DNSLearnable) -> Bool {
        hostname == other.hostname && addresses.count == other.addresses.count
            && zip(addresses, other.addresses).allSatisfy { $0.address == $1.address && $0.ttl == $1.ttl }
    }

    /// Reads `response` (nothing unless a NOERROR response).
    public init(_ response: DNSMessage) {
        guard response.isResponse, response.rcode == .noError, let question = response.questions.first else {
            self.hostname = response.questions.first?.name ?? ""
            self.addresses = []
            return
        }
        var names: Set<String> = [question.name]
        // A chain is at most as long as the answer list; each pass adds one link.
        for _ in 0..<response.answers.count {
            var grew = false
            for record in response.answers where names.contains(record.name) {
                if case .canonicalName(let target) = record.data, names.insert(target).inserted { grew = true }
            }
            if !grew { break }
        }
        self.hostname = question.name
        self.addresses = response.answers.compactMap { record in
            guard names.contains(record.name), case .address(let address) = record.data else { return nil }
            return (address, record.ttl)
        }
    }
}
