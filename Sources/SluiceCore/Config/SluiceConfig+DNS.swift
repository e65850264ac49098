import Yams

/// `dns:` in sluice.yaml: the sidecar's DNS proxy and what it answers for unregistered names.
public struct DNSConfig: Sendable, Equatable {
    /// The answer for a name no ServiceEntry registers, under REGISTRY_ONLY.
    public enum Unregistered: String, Sendable, Equatable {
        /// "No such name" (the default).
        case nxdomain = "NXDOMAIN"
        /// "Refused".
        case refused = "REFUSED"
        /// Resolve it as usual (the TCP/UDP policy still decides the connection).
        case pass = "PASS"
    }

    /// Serve DNS on port 15053 (what `sluice-init --capture-dns` redirects port 53 to).
    public var proxy: Bool
    /// What unregistered names get.
    public var unregistered: Unregistered
    /// Answer hosts of entries without `addresses` (resolution DNS or STATIC) with addresses
    /// from 240.240.0.0/16 and 2001:2::/48 (Istio's auto-allocation, `DNSAllocations`), which
    /// the sidecar maps back to the host. Only with the DNS proxy.
    public var autoAllocate: Bool
    /// The shortest time, in seconds, the learned-address table keeps an address the pod
    /// resolved (`dns.learnedTTLFloor`, default 30 s): a TTL of 0 or 1 s still lets the app
    /// connect right after resolving.
    public var learnedTTLFloor: UInt32
    /// The longest time, in seconds, it keeps one (`dns.learnedTTLCap`, default 1 h), so that
    /// an address does not stay allowed for the days a long TTL would give it.
    public var learnedTTLCap: UInt32

    /// The longest either bound may be: one day.
    public static let learnedTTLLimit: UInt32 = 86_400

    /// Creates a DNS config; the defaults are what no `dns:` means.
    public init(
        proxy: Bool = false, unregistered: Unregistered = .nxdomain, autoAllocate: Bool = false,
        learnedTTLFloor: UInt32 = LearnedAddresses.defaultMinimumTTL, learnedTTLCap: UInt32 = LearnedAddresses.defaultMaximumTTL
    ) {
        self.proxy = proxy
        self.unregistered = unregistered
        self.autoAllocate = autoAllocate
        self.learnedTTLFloor = learnedTTLFloor
        self.learnedTTLCap = learnedTTLCap
    }
}

/// `udp:` in sluice.yaml: read NFQUEUE (what `sluice-init --capture-udp` fills) and decide UDP flows.
public struct UDPConfig: Sendable, Equatable {
    /// Read the queue.
    public var capture: Bool
    /// The NFQUEUE number (`sluice-init --udp-queue`).
    public var queue: Int

    /// Creates a UDP config; no capture by default.
    public init(capture: Bool = false, queue: Int = 15100) {
        self.capture = capture
        self.queue = queue
    }
}

extension SluiceConfig {
    /// Decodes `dns:`; problems go to `reader` with their line.
    static func decodeDNS(_ node: Node, _ reader: inout YAMLReader) -> DNSConfig {
        var config = DNSConfig()
        guard let mapping = reader.mapping(node, "dns") else { return config }
        reader.checkKeys(mapping, allowed: ["proxy", "unregistered", "autoAllocate", "learnedTTLFloor", "learnedTTLCap"], prefix: "dns")
        if let value = YAMLReader.value(mapping, "proxy"), let proxy = reader.bool(value, "dns.proxy") {
            config.proxy = proxy
        }
        if let value = YAMLReader.value(mapping, "autoAllocate"), let flag = reader.bool(value, "dns.autoAllocate") {
            config.autoAllocate = flag
        }
        if let value = YAMLReader.value(mapping, "unregistered"), let text = reader.string(value, "dns.unregistered") {
            if let choice = DNSConfig.Unregistered(rawValue: text.uppercased()) {
                config.unregistered = choice
            } else {
                reader.error("dns.unregistered", at: value, "must be NXDOMAIN, REFUSED or PASS, not \"\(text)\"")
            }
        }
        let floor = YAMLReader.value(mapping, "learnedTTLFloor")
        if let node = floor, let seconds = learnedTTL(node, "dns.learnedTTLFloor", allowZero: true, &reader) {
            config.learnedTTLFloor = seconds
        }
        if let node = YAMLReader.value(mapping, "learnedTTLCap"), let seconds = learnedTTL(node, "dns.learnedTTLCap", allowZero: false, &reader) {
            if seconds < config.learnedTTLFloor {
                reader.error("dns.learnedTTLCap", at: node, "must be at least dns.learnedTTLFloor (\(config.learnedTTLFloor)s), not \(seconds)s")
            } else {
                config.learnedTTLCap = seconds
            }
        } else if let floor, config.learnedTTLFloor > config.learnedTTLCap {
            reader.error("dns.learnedTTLFloor", at: floor, "must be at most dns.learnedTTLCap (\(config.learnedTTLCap)s), not \(config.learnedTTLFloor)s")
            config.learnedTTLFloor = LearnedAddresses.defaultMinimumTTL
        }
        return config
    }

    /// A learned-table bound: a duration in whole seconds, at most a day.
    private static func learnedTTL(_ node: Node, _ field: String, allowZero: Bool, _ reader: inout YAMLReader) -> UInt32? {
        guard let duration = decodeDuration(node, field, allowZero: allowZero, &reader) else { return nil }
        let (seconds, attoseconds) = duration.components
        guard attoseconds == 0 else {
            reader.error(field, at: node, "must be whole seconds (the table counts seconds), e.g. \"30s\" or \"1h\"")
            return nil
        }
        guard seconds <= Int64(DNSConfig.learnedTTLLimit) else {
            reader.error(field, at: node, "must be at most 24h, not \(seconds)s")
            return nil
        }
        return UInt32(seconds)
    }

    /// Decodes `udp:`.
    static func decodeUDP(_ node: Node, _ reader: inout YAMLReader) -> UDPConfig {
        var config = UDPConfig()
        guard let mapping = reader.mapping(node, "udp") else { return config }
        reader.checkKeys(mapping, allowed: ["capture", "queue"], prefix: "udp")
        if let value = YAMLReader.value(mapping, "capture"), let capture = reader.bool(value, "udp.capture") {
            config.capture = capture
        }
        if let value = YAMLReader.value(mapping, "queue"), let queue = reader.int(value, "udp.queue", in: 0...65535) {
            config.queue = queue
        }
        return config
    }
}
