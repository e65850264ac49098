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

    /// Creates a DNS config; the defaults are what no `dns:` means.
    public init(proxy: Bool = false, unregistered: Unregistered = .nxdomain, autoAllocate: Bool = false) {
        self.proxy = proxy
        self.unregistered = unregistered
        self.autoAllocate = autoAllocate
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
        reader.checkKeys(mapping, allowed: ["proxy", "unregistered", "autoAllocate"], prefix: "dns")
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
        return config
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
