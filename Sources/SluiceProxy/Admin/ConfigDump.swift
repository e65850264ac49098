import Foundation
import SluiceCore

/// `/config_dump`: the configuration in force, every ServiceEntry of its registry and the
/// routes compiled from the routing objects (with the `egressGateway:` shorthand's expansion),
/// as JSON.
///
/// Keys follow `sluice.yaml` and the ServiceEntry spec, so what a user reads here maps back to
/// what they wrote; values are the effective ones (defaults filled in, the role's mode when
/// `sluice.yaml` sets none). Unset optional values are `null`, not missing.
struct ConfigDump: Encodable {
    let role: String
    let config: Config
    let registry: RegistryDump
    let routes: RoutesDump
    let diagnostics: [String]
    let watchedPaths: [String]
    /// Issue 22: the addresses the pod resolved through the DNS proxy, still valid.
    let learnedAddresses: [LearnedAddress]
    /// Issue 22: the DNS proxy's allocated addresses (`dns.autoAllocate`), by host.
    let dnsAllocations: [Allocation]

    /// One entry of the address → hostname table.
    struct LearnedAddress: Encodable {
        let address: String
        let hostname: String
        let secondsLeft: UInt64
    }

    /// One host's allocated addresses.
    struct Allocation: Encodable {
        let host: String
        let ipv4: String
        let ipv6: String?
    }

    init(snapshot: SluiceSnapshot, role: ProxyRole, learned: LearnedAddressBook? = nil, allocations: DNSAllocations = DNSAllocations()) {
        self.dnsAllocations = allocations.allocations.map {
            Allocation(host: $0.host, ipv4: $0.ipv4.description, ipv6: $0.ipv6?.description)
        }
        self.learnedAddresses = (learned?.entries() ?? []).map {
            LearnedAddress(address: $0.address.description, hostname: $0.hostname, secondsLeft: $0.secondsLeft)
        }
        self.role = role.rawValue
        self.config = Config(snapshot.config, role: role)
        self.registry = RegistryDump(entries: snapshot.registry.entries)
        self.routes = RoutesDump(snapshot: snapshot, role: role)
        self.diagnostics = snapshot.diagnostics.map(\.description)
        self.watchedPaths = snapshot.watchedPaths
    }

    /// Pretty, key-sorted JSON: stable output that diffs well between two dumps.
    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        } catch {
            // Only strings, numbers and bools go in, which always encode; say so if not.
            return "{\"error\": \"config dump failed\"}\n"
        }
    }

    struct Config: Encodable {
        let outboundTrafficPolicy: [String: String]
        let registry: [String]
        let egressGateway: Gateway?
        let listeners: [Listener]
        let accessLog: AccessLog
        let limits: LimitsDump

        init(_ config: SluiceConfig, role: ProxyRole) {
            // ActiveConfig's rule: an unset mode is the role's default.
            let mode = config.mode ?? (role == .gateway ? .registryOnly : .allowAny)
            self.outboundTrafficPolicy = ["mode": mode.rawValue]
            self.registry = config.registryPaths
            self.egressGateway = config.egressGateway.map(Gateway.init)
            self.listeners = role == .gateway ? config.listeners.map(Listener.init) : []
            self.accessLog = AccessLog(path: config.accessLog.path, format: config.accessLog.format, enabled: config.accessLog.enabled)
            self.limits = LimitsDump(config.limits)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(outboundTrafficPolicy, forKey: .outboundTrafficPolicy)
            try container.encode(registry, forKey: .registry)
            // `null` says "registered hosts go direct"; a missing key would say nothing.
            try container.encode(egressGateway, forKey: .egressGateway)
            try container.encode(listeners, forKey: .listeners)
            try container.encode(accessLog, forKey: .accessLog)
            try container.encode(limits, forKey: .limits)
        }

        enum CodingKeys: String, CodingKey {
            case outboundTrafficPolicy, registry, egressGateway, listeners, accessLog, limits
        }
    }

    /// Sizes as numbers, durations as `sluice.yaml` writes them (`10s`, `500ms`).
    struct LimitsDump: Encodable {
        let maxRequestHeadBytes: Int
        let maxRequestHeaders: Int
        let maxConnections: Int
        let headerReadTimeout: String
        let detectionTimeout: String
        let drainPeriod: String
        let connectTimeout: String
        let idleTimeout: String
        let upstreamTimeout: String

        init(_ limits: Limits) {
            self.maxRequestHeadBytes = limits.maxRequestHeadBytes
            self.maxRequestHeaders = limits.maxRequestHeaders
            self.maxConnections = limits.maxConnections
            self.headerReadTimeout = DurationText.format(limits.headerReadTimeout)
            self.detectionTimeout = DurationText.format(limits.detectionTimeout)
            self.drainPeriod = DurationText.format(limits.drainPeriod)
            self.connectTimeout = DurationText.format(limits.connectTimeout)
            self.idleTimeout = DurationText.format(limits.idleTimeout)
            self.upstreamTimeout = DurationText.format(limits.upstreamTimeout)
        }
    }

    struct Gateway: Encodable {
        let address: [String]
        let `protocol`: String
        let ports: [String: Int]
        let hosts: [String]
        let connectTimeout: String

        init(_ gateway: EgressGatewayConfig) {
            self.address = gateway.addresses
            self.protocol = gateway.protocol.rawValue
            self.ports = ["http": gateway.httpPort, "tls": gateway.tlsPort, "connect": gateway.connectPort]
            self.hosts = gateway.hosts
            self.connectTimeout = DurationText.format(gateway.connectTimeout)
        }
    }

    struct Listener: Encodable {
        let port: Int
        let `protocol`: String
        let address: String

        init(_ listener: ListenerConfig) {
            self.port = listener.port
            self.protocol = listener.protocol.rawValue
            self.address = listener.address
        }
    }

    struct AccessLog: Encodable {
        let path: String
        let format: String
        let enabled: Bool
    }

    struct RegistryDump: Encodable {
        let count: Int
        let serviceEntries: [Entry]

        init(entries: [ServiceEntry]) {
            self.count = entries.count
            self.serviceEntries = entries.map(Entry.init)
        }
    }

    struct Entry: Encodable {
        let name: String
        let namespace: String
        let hosts: [String]
        let addresses: [String]
        let ports: [Port]
        let location: String
        let resolution: String
        let endpoints: [Endpoint]
        let exportTo: [String]
        let source: String

        init(_ entry: ServiceEntry) {
            self.name = entry.name
            self.namespace = entry.namespace
            self.hosts = entry.hosts
            self.addresses = entry.addresses.map(\.description)
            self.ports = entry.ports.map(Port.init)
            self.location = entry.location.rawValue
            self.resolution = entry.resolution.rawValue
            self.endpoints = entry.endpoints.map(Endpoint.init)
            self.exportTo = entry.exportTo
            self.source = entry.source.description
        }
    }

    struct Port: Encodable {
        let number: Int
        let name: String
        let `protocol`: String
        let targetPort: Int?

        init(_ port: ServicePort) {
            self.number = port.number
            self.name = port.name
            self.protocol = port.protocol.description
            self.targetPort = port.targetPort
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(number, forKey: .number)
            try container.encode(name, forKey: .name)
            try container.encode(`protocol`, forKey: .protocol)
            try container.encode(targetPort, forKey: .targetPort)
        }

        enum CodingKeys: String, CodingKey {
            case number, name, `protocol`, targetPort
        }
    }

    struct Endpoint: Encodable {
        let address: String
        let ports: [String: Int]
        let labels: [String: String]
        let weight: Int?
        let network: String?
        let locality: String?

        init(_ endpoint: WorkloadEndpoint) {
            self.address = endpoint.address
            self.ports = endpoint.ports
            self.labels = endpoint.labels
            self.weight = endpoint.weight
            self.network = endpoint.network
            self.locality = endpoint.locality
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(address, forKey: .address)
            try container.encode(ports, forKey: .ports)
            try container.encode(labels, forKey: .labels)
            try container.encode(weight, forKey: .weight)
            try container.encode(network, forKey: .network)
            try container.encode(locality, forKey: .locality)
        }

        enum CodingKeys: String, CodingKey {
            case address, ports, labels, weight, network, locality
        }
    }
}
