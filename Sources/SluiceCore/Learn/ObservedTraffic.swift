/// What a set of access logs showed, tallied per destination, port and protocol: the input
/// `LearnedRegistry` turns into ServiceEntries.
///
/// Memory grows with the number of distinct destinations (host names and addresses) and
/// their ports, never with the number of lines; the order lines arrive in (several pods'
/// logs, rotated files in any order) does not change the result.
public struct ObservedTraffic: Sendable, Equatable {
    /// Where traffic went, as a ServiceEntry can name it.
    public enum Destination: Sendable, Hashable {
        /// A DNS name (Host, SNI or CONNECT target): an entry with `hosts`.
        case host(String)
        /// An IP address (opaque TCP, TLS without SNI, a Host or tunnel that is an IP): an
        /// entry with `addresses`.
        case address(IPAddress)
    }

    /// How a port was used, which decides the protocol a ServiceEntry port must declare.
    public enum PortUse: Sendable, Hashable, Comparable, CaseIterable {
        /// HTTP requests, matched by Host.
        case http
        /// TLS, matched by SNI (and CONNECT tunnels to a name, which match a port of any protocol).
        case tls
        /// Bytes matched by address only.
        case tcp
    }

    /// How often, and when, one destination was used one way on one port.
    public struct Usage: Sendable, Equatable {
        /// Requests (HTTP) or connections (TLS, TCP) logged.
        public var count = 0
        /// Of those, the ones the proxy denied (audit mode, or REGISTRY_ONLY).
        public var denied = 0
        /// The earliest `start_time`, epoch milliseconds.
        public var firstSeen: Int64?
        /// The latest `start_time`, epoch milliseconds.
        public var lastSeen: Int64?

        /// No use yet.
        public init() {}

        /// Adds one logged request or connection.
        public mutating func add(at time: Int64?, denied wasDenied: Bool) {
            count += 1
            if wasDenied { denied += 1 }
            if let time {
                firstSeen = Swift.min(firstSeen ?? time, time)
                lastSeen = Swift.max(lastSeen ?? time, time)
            }
        }

        /// Adds another tally of the same kind (folding hosts, merging protocols).
        public mutating func add(_ other: Usage) {
            count += other.count
            denied += other.denied
            if let first = other.firstSeen { firstSeen = Swift.min(firstSeen ?? first, first) }
            if let last = other.lastSeen { lastSeen = Swift.max(lastSeen ?? last, last) }
        }
    }

    /// Port number → how it was used → how often.
    public typealias Ports = [Int: [PortUse: Usage]]

    /// Every destination seen, with its ports.
    public private(set) var destinations: [Destination: Ports] = [:]
    /// Lines that taught something.
    public private(set) var learnedLines = 0
    /// Of those, lines the proxy had denied.
    public private(set) var deniedLines = 0
    /// The earliest and latest `start_time` of the learned lines.
    public private(set) var firstSeen: Int64?
    /// The latest `start_time` of the learned lines.
    public private(set) var lastSeen: Int64?

    /// Nothing observed yet.
    public init() {}

    /// Tallies one logged connection.
    public mutating func record(_ connection: LoggedConnection) {
        guard let (destination, use) = Self.classify(connection) else { return }
        learnedLines += 1
        if connection.wasDenied { deniedLines += 1 }
        if let time = connection.startTime {
            firstSeen = Swift.min(firstSeen ?? time, time)
            lastSeen = Swift.max(lastSeen ?? time, time)
        }
        destinations[destination, default: [:]][connection.port, default: [:]][use, default: Usage()]
            .add(at: connection.startTime, denied: connection.wasDenied)
    }

    /// Where a connection goes in the tally: names by host, everything else by address. A
    /// tunnel to a name counts as TLS: its entry needs a port the tunnel can match (any
    /// protocol does) that is not TCP, because a TCP port on an entry without `addresses`
    /// would take that port on every address.
    static func classify(_ connection: LoggedConnection) -> (Destination, PortUse)? {
        switch connection.traffic {
        case .http(let host):
            if let literal = IPAddress(host) { return (.address(literal), .http) }
            return (.host(host), .http)
        case .tls(let serverName):
            return (.host(serverName), .tls)
        case .tunnel(let host):
            if let literal = IPAddress(host) { return (.address(literal), .tcp) }
            return (.host(host), .tls)
        case .tcp:
            guard let address = connection.destination else { return nil }
            return (.address(address), .tcp)
        }
    }

    /// Adds everything another tally saw (a log read on another thread, say).
    public mutating func add(_ other: ObservedTraffic) {
        for (destination, ports) in other.destinations {
            for (port, uses) in ports {
                for (use, usage) in uses {
                    destinations[destination, default: [:]][port, default: [:]][use, default: Usage()].add(usage)
                }
            }
        }
        learnedLines += other.learnedLines
        deniedLines += other.deniedLines
        if let first = other.firstSeen { firstSeen = Swift.min(firstSeen ?? first, first) }
        if let last = other.lastSeen { lastSeen = Swift.max(lastSeen ?? last, last) }
    }
}
