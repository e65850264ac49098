import Foundation

/// One HTTP request or TCP/TLS connection read back from an access-log line: what the app
/// tried to reach, in the terms a ServiceEntry needs (the name it asked for, the address and
/// port it dialled).
public struct LoggedConnection: Sendable, Equatable {
    /// How the destination was named, which decides how a ServiceEntry can match it.
    public enum Traffic: Sendable, Hashable {
        /// An HTTP request; `host` is the `Host` (`authority`), normalised, without its port.
        case http(host: String)
        /// A TLS connection with an SNI (`requested_server_name`), normalised.
        case tls(serverName: String)
        /// A connection matched by address: opaque TCP, or TLS without an SNI.
        case tcp
        /// An HTTP `CONNECT host:port` tunnel; `port` is the tunnel's, not the proxy's.
        case tunnel(host: String)
    }

    /// What the connection was.
    public var traffic: Traffic
    /// The original destination address (`downstream_local_address`), or, for a CONNECT
    /// tunnel to an IP, that IP; nil when the line does not say.
    public var destination: IPAddress?
    /// The port the registry must declare: the original destination's, or the tunnel target's.
    public var port: Int
    /// `start_time` in epoch milliseconds; nil when the line has none that parses.
    public var startTime: Int64?
    /// True when the proxy denied it (`BlackHoleCluster` or flag `NR`): under audit mode
    /// that is exactly the traffic a registry is still missing, so it is learned too.
    public var wasDenied: Bool

    /// Creates a logged connection.
    public init(traffic: Traffic, destination: IPAddress?, port: Int, startTime: Int64? = nil, wasDenied: Bool = false) {
        self.traffic = traffic
        self.destination = destination
        self.port = port
        self.startTime = startTime
        self.wasDenied = wasDenied
    }

    /// The host name asked for (Host, SNI or CONNECT target), when it is a name, not an IP.
    public var hostName: String? {
        switch traffic {
        case .http(let host), .tls(let host), .tunnel(let host):
            return IPAddress(host) == nil ? host : nil
        case .tcp:
            return nil
        }
    }
}

/// Why an access-log line taught nothing; `sluice learn` counts each reason on stderr.
public enum SkippedLogLine: String, Error, Sendable, CaseIterable, Hashable {
    /// Not JSON at all: the proxy's own log text, or another program's.
    case notJSON = "not JSON"
    /// Starts like JSON but does not parse: a line cut short (rotation, a crash, a full disk).
    case truncatedJSON = "invalid or truncated JSON"
    /// Valid JSON, but not an access-log record (another tool's structured log).
    case notAccessLog = "JSON without access-log fields"
    /// An access-log record without a usable destination: an HTTP request without `Host`, a
    /// connection without `downstream_local_address`, a malformed address or port.
    case noDestination = "no usable destination"
    /// A Host, SNI or CONNECT target that is neither a DNS name a ServiceEntry can hold nor an IP.
    case invalidHost = "a host that is not a valid DNS name or IP"
    /// Longer than the line limit: skipped without being held in memory.
    case overlong = "longer than the line limit"
}

/// Reads one access-log line (the JSON object Sluice, Envoy or ASM writes) into a
/// `LoggedConnection`, or says why it cannot.
///
/// The few fields that matter are read by `AccessLogFieldScanner`, which validates the whole
/// line as JSON and answers as Foundation's `JSONDecoder` would (tested and fuzzed against it)
/// at a fraction of its cost. Text before the first `{` is ignored, so the prefixes that
/// `kubectl logs --timestamps`, `--prefix` and the CRI log format put in front of a line do
/// not get in the way.
public struct AccessLogLineReader {
    /// The fields `sluice learn` reads; every one optional, because other tools' JSON and
    /// Envoy's own formats leave some out.
    struct Fields: Decodable, Equatable {
        var startTime: String?
        var method: String?
        var `protocol`: String?
        var authority: String?
        var requestedServerName: String?
        var downstreamLocalAddress: String?
        var upstreamCluster: String?
        var responseFlags: String?
        var istioPolicyStatus: String?

        enum CodingKeys: String, CodingKey {
            case startTime = "start_time"
            case method
            case `protocol`
            case authority
            case requestedServerName = "requested_server_name"
            case downstreamLocalAddress = "downstream_local_address"
            case upstreamCluster = "upstream_cluster"
            case responseFlags = "response_flags"
            case istioPolicyStatus = "istio_policy_status"
        }
    }

    private let memo = Memo()

    /// A reader; keep one for a whole stream (it remembers the hosts and addresses it has
    /// already checked: a log repeats the same few on nearly every line).
    public init() {}

    /// The connection `line` records, or why it records none. Blank lines are nil.
    public func read(_ line: UnsafeRawBufferPointer) -> Result<LoggedConnection, SkippedLogLine>? {
        guard let brace = line.firstIndex(of: UInt8(ascii: "{")) else {
            return line.allSatisfy(Self.isSpace) ? nil : .failure(.notJSON)
        }
        switch AccessLogFieldScanner.scan(UnsafeRawBufferPointer(rebasing: line[brace...])) {
        case .fields(let fields): return Self.connection(from: fields, memo: memo)
        case .invalidJSON: return .failure(.truncatedJSON)
        case .otherShape: return .failure(.notAccessLog)  // a wanted field of another type
        }
    }

    /// What Foundation's `JSONDecoder` makes of `object`: the reference the scanner is tested
    /// and fuzzed against.
    static func decodeWithFoundation(_ object: UnsafeRawBufferPointer) -> AccessLogFieldScanner.Outcome {
        let data = object.baseAddress.map { Data(bytes: $0, count: object.count) } ?? Data()
        do {
            return .fields(try JSONDecoder().decode(Fields.self, from: data))
        } catch DecodingError.dataCorrupted {
            return .invalidJSON
        } catch {
            return .otherShape
        }
    }

    /// The same for a line held as a String (tests, fixtures).
    public func read(_ line: String) -> Result<LoggedConnection, SkippedLogLine>? {
        var copy = line
        return copy.withUTF8 { read(UnsafeRawBufferPointer($0)) }
    }

    static func connection(from fields: Fields, memo: Memo = Memo()) -> Result<LoggedConnection, SkippedLogLine> {
        // An access-log record says when and where; another tool's JSON says neither.
        guard fields.startTime != nil || fields.upstreamCluster != nil,
              fields.downstreamLocalAddress != nil || fields.authority != nil || fields.requestedServerName != nil
        else { return .failure(.notAccessLog) }

        let startTime = fields.startTime.flatMap { RFC3339.epochMilliseconds(parsing: $0) }
        let audited = fields.istioPolicyStatus == Decision.auditDeniedStatus
        let denied = !audited
            && (fields.upstreamCluster == "BlackHoleCluster" || (fields.responseFlags.map(Self.hasNoRouteFlag) ?? false))
        let original = fields.downstreamLocalAddress.flatMap(memo.address)
        if let text = fields.downstreamLocalAddress, !text.isEmpty, text != "-", original == nil {
            return .failure(.noDestination)
        }

        // A Host, SNI or tunnel target: a DNS name, or an IP literal (which goes the address way).
        func named(
            _ raw: String?, _ make: (String) -> LoggedConnection.Traffic, port: Int?, tunnel: Bool = false
        ) -> Result<LoggedConnection, SkippedLogLine> {
            guard let raw, raw != "-" else { return .failure(.noDestination) }
            let host: String
            let literal: IPAddress?
            switch memo.host(raw) {
            case .empty: return .failure(.noDestination)
            case .invalid: return .failure(.invalidHost)
            case .name(let name): (host, literal) = (name, nil)
            case .literal(let address): (host, literal) = (address.description, address)
            }
            guard let port else { return .failure(.noDestination) }
            // A tunnel goes where its target says; anything else was dialled at the original destination.
            let destination = tunnel ? (literal ?? original?.address) : original?.address
            return .success(LoggedConnection(
                traffic: make(host), destination: destination, port: port, startTime: startTime, wasDenied: denied))
        }

        if fields.method == "CONNECT" {
            // The tunnel's target is what the registry decides on (Policy.decide(tunnelTo:)).
            guard let target = fields.authority, let split = Self.splitHostPort(target) else { return .failure(.noDestination) }
            return named(split.host, { .tunnel(host: $0) }, port: split.port, tunnel: true)
        }
        if let proto = fields.protocol, proto.hasPrefix("HTTP/") {
            // Registry ports match the port dialled, not the one in Host; a log without the
            // original destination falls back to Host's port.
            let port = original?.port ?? fields.authority.flatMap(Self.splitHostPort)?.port
            return named(fields.authority, { .http(host: $0) }, port: port)
        }
        // A connection: Envoy writes no protocol (null or "-") for TCP proxy lines; accept "TCP" too.
        if let serverName = fields.requestedServerName, !serverName.isEmpty, serverName != "-" {
            let learned = named(serverName, { .tls(serverName: $0) }, port: original?.port)
            // An IP in the SNI: the sidecar then matches the dialled address, as without SNI.
            if case .success(var connection) = learned, connection.hostName == nil {
                guard connection.destination != nil else { return .failure(.noDestination) }
                connection.traffic = .tcp
                return .success(connection)
            }
            return learned
        }
        guard let original else { return .failure(.noDestination) }
        return .success(LoggedConnection(
            traffic: .tcp, destination: original.address, port: original.port, startTime: startTime, wasDenied: denied))
    }

    /// `ip:port` or `[v6]:port`, as access logs write addresses.
    static func splitAddress(_ text: String) -> (address: IPAddress, port: Int)? {
        guard let split = splitHostPort(text), let address = IPAddress(split.host) else { return nil }
        return (address.unmappedIPv4, split.port)
    }

    /// `host:port`, `[v6]:port`; nil without a port in 1-65535.
    static func splitHostPort(_ text: String) -> (host: String, port: Int)? {
        // The data path's parser: the same `host:port` and `[v6]:port` rules as a CONNECT target.
        guard let authority = Authority(text, as: .hostAndPort), let port = authority.port else { return nil }
        return (authority.host, port)
    }

    /// `NR` among Envoy's comma-separated flags (`NR`, `UF,NR`), without splitting them.
    static func hasNoRouteFlag(_ flags: String) -> Bool {
        var previous: UInt8 = UInt8(ascii: ",")
        var matched = 0  // bytes of "NR" matched at the start of the current flag
        for byte in flags.utf8 {
            if byte == UInt8(ascii: ",") {
                if matched == 2 { return true }
                matched = 0
            } else if matched == 0 && previous == UInt8(ascii: ",") && byte == UInt8(ascii: "N") {
                matched = 1
            } else if matched == 1 && byte == UInt8(ascii: "R") {
                matched = 2
            } else {
                matched = 3  // anything else in this flag
            }
            previous = byte
        }
        return matched == 2
    }

    /// What a Host, SNI or tunnel host turned out to be.
    enum HostVerdict {
        case empty
        case invalid
        case name(String)
        case literal(IPAddress)
    }

    /// Answers for the strings a log repeats on nearly every line (the same hosts, the same
    /// few destination addresses), so each is normalised and validated once. Bounded: when it
    /// holds `limit` answers it starts again.
    final class Memo {
        static let limit = 1 << 16
        private var addresses: [String: (address: IPAddress, port: Int)?] = [:]
        private var hosts: [String: HostVerdict] = [:]

        func address(_ text: String) -> (address: IPAddress, port: Int)? {
            if let known = addresses[text] { return known }
            if addresses.count >= Self.limit { addresses.removeAll(keepingCapacity: true) }
            let answer = AccessLogLineReader.splitAddress(text)
            addresses[text] = .some(answer)
            return answer
        }

        func host(_ raw: String) -> HostVerdict {
            if let known = hosts[raw] { return known }
            if hosts.count >= Self.limit { hosts.removeAll(keepingCapacity: true) }
            let answer = AccessLogLineReader.judge(host: raw)
            hosts[raw] = answer
            return answer
        }
    }

    static func judge(host raw: String) -> HostVerdict {
        if raw.isEmpty { return .empty }
        // The data path's own parser: what it refuses (userinfo, spaces, non-ASCII) the
        // sidecar answered with 400, so no registry entry is learned from it.
        guard let host = Authority(raw)?.host else { return .invalid }
        if let literal = IPAddress(host) { return .literal(literal.unmappedIPv4) }
        // A name a ServiceEntry can hold, but never a wildcard: a client must not be able to
        // write `Host: *.example.com` and have a wildcard learned from it.
        guard ServiceEntry.hostProblem(host) == nil, !host.utf8.contains(UInt8(ascii: "*")) else { return .invalid }
        return .name(host)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }
}
