import Foundation
import Yams

/// Reading `sluice.yaml`. Every key is checked: a typo is an error with its line, never a
/// silently ignored setting.
extension SluiceConfig {
    private static let topLevelKeys: Set<String> = [
        "outboundTrafficPolicy", "registry", "egressGateway", "listeners", "accessLog", "limits",
        "dns", "udp",
    ]

    /// Parses config text. `path` names the file in diagnostics, and its directory is where
    /// relative `registry` paths are resolved from (left relative if `path` is relative). Pure.
    public static func parse(yaml: String, path: String) -> Result<SluiceConfig, ConfigDiagnostics> {
        let (documents, syntaxError) = YAMLReader.documents(yaml: yaml, path: path)
        if let syntaxError { return .failure(ConfigDiagnostics([syntaxError])) }
        let content = documents.filter { !$0.isNull }
        if content.count > 1 {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(
                path: path, line: YAMLReader.line(of: content[1]),
                message: "expected one YAML document, found \(content.count)")]))
        }
        guard let root = content.first else { return .success(SluiceConfig()) }

        var reader = YAMLReader(path: path, fallbackLine: YAMLReader.line(of: root) ?? 1)
        guard let top = root.effectiveMapping else {
            reader.error(nil, at: root, "the config must be a mapping of settings")
            return .failure(ConfigDiagnostics(reader.diagnostics))
        }
        reader.checkKeys(top, allowed: topLevelKeys, prefix: "")

        var mode: OutboundTrafficPolicyMode?
        var audit = false
        if let node = YAMLReader.value(top, "outboundTrafficPolicy"), let policy = reader.mapping(node, "outboundTrafficPolicy") {
            reader.checkKeys(policy, allowed: ["mode", "audit"], prefix: "outboundTrafficPolicy")
            if let auditNode = YAMLReader.value(policy, "audit"), let value = reader.bool(auditNode, "outboundTrafficPolicy.audit") {
                audit = value
            }
            if let modeNode = YAMLReader.value(policy, "mode"), let text = reader.string(modeNode, "outboundTrafficPolicy.mode") {
                mode = OutboundTrafficPolicyMode(rawValue: text)
                if mode == nil {
                    reader.error("outboundTrafficPolicy.mode", at: modeNode, "must be ALLOW_ANY or REGISTRY_ONLY, not \"\(text)\"")
                }
            }
        }

        var registryPaths: [String] = []
        if let node = YAMLReader.value(top, "registry"), let list = reader.stringList(node, "registry", allowSingle: true) {
            let base = ConfigPath.directory(of: path)
            for (index, item) in list.enumerated() {
                if item.isEmpty {
                    reader.error("registry[\(index)]", at: node.sequence?[index] ?? node, "must not be empty")
                } else {
                    registryPaths.append(ConfigPath.resolve(item, relativeTo: base))
                }
            }
        }

        var gateway: EgressGatewayConfig?
        if let node = YAMLReader.value(top, "egressGateway"), !node.isNull {
            gateway = decodeGateway(node, &reader)
        }

        var listeners = ListenerConfig.defaults
        if let node = YAMLReader.value(top, "listeners") {
            listeners = decodeListeners(node, &reader)
        }

        var accessLog = AccessLogConfig()
        if let node = YAMLReader.value(top, "accessLog"), let mapping = reader.mapping(node, "accessLog") {
            reader.checkKeys(mapping, allowed: ["path", "format", "enabled"], prefix: "accessLog")
            var logPath = accessLog.path
            var format = accessLog.format
            var enabled = accessLog.enabled
            if let pathNode = YAMLReader.value(mapping, "path"), let text = reader.string(pathNode, "accessLog.path") {
                if text.isEmpty { reader.error("accessLog.path", at: pathNode, "must not be empty") } else { logPath = text }
            }
            if let formatNode = YAMLReader.value(mapping, "format"), let text = reader.string(formatNode, "accessLog.format") {
                if AccessLogConfig.formats.contains(text) {
                    format = text
                } else {
                    reader.error("accessLog.format", at: formatNode, "must be json or text, not \"\(text)\"")
                }
            }
            if let enabledNode = YAMLReader.value(mapping, "enabled"), let value = reader.bool(enabledNode, "accessLog.enabled") {
                enabled = value
            }
            accessLog = AccessLogConfig(path: logPath, format: format, enabled: enabled)
        }

        var limits = Limits()
        if let node = YAMLReader.value(top, "limits"), let mapping = reader.mapping(node, "limits") {
            limits = decodeLimits(mapping, &reader)
        }

        let dns = YAMLReader.value(top, "dns").map { decodeDNS($0, &reader) } ?? DNSConfig()
        let udp = YAMLReader.value(top, "udp").map { decodeUDP($0, &reader) } ?? UDPConfig()

        guard !reader.hasErrors else { return .failure(ConfigDiagnostics(reader.sortedDiagnostics)) }
        var config = SluiceConfig(
            mode: mode, audit: audit, registryPaths: registryPaths, egressGateway: gateway, listeners: listeners,
            accessLog: accessLog, limits: limits)
        config.dns = dns
        config.udp = udp
        return .success(config)
    }

    /// Reads and parses the config file at `path`; a relative path is taken from the current
    /// directory, so registry paths come out absolute.
    public static func load(path: String) -> Result<SluiceConfig, ConfigDiagnostics> {
        let absolute = ConfigPath.resolve(path, relativeTo: FileManager.default.currentDirectoryPath)
        guard let data = FileManager.default.contents(atPath: absolute) else {
            let exists = FileManager.default.fileExists(atPath: absolute)
            return .failure(ConfigDiagnostics([ConfigDiagnostic(
                path: path, message: exists ? "cannot read file" : "no such file")]))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(ConfigDiagnostics([ConfigDiagnostic(path: path, message: "not UTF-8 text")]))
        }
        return parse(yaml: text, path: absolute)
    }

    // MARK: Sections

    private static func decodeGateway(_ node: Node, _ reader: inout YAMLReader) -> EgressGatewayConfig? {
        guard let mapping = reader.mapping(node, "egressGateway") else { return nil }
        let errorsBefore = reader.diagnostics.count
        reader.checkKeys(mapping, allowed: ["address", "protocol", "ports", "hosts", "connectTimeout", "tls"], prefix: "egressGateway")
        var addresses: [String] = []
        if let addressNode = YAMLReader.value(mapping, "address"),
           let list = reader.stringList(addressNode, "egressGateway.address", allowSingle: true) {
            addresses = list
            for (index, address) in list.enumerated()
            where IPAddress(address) == nil && !ServiceEntry.isDNSName(Substring(address)) {
                reader.error(addressNode.sequence == nil ? "egressGateway.address" : "egressGateway.address[\(index)]",
                             at: addressNode.sequence?[index] ?? addressNode, "\"\(address)\" is not an IP address or DNS name")
            }
        }
        if addresses.isEmpty {
            reader.error("egressGateway.address", at: YAMLReader.value(mapping, "address") ?? node,
                         "required: the gateway's IP address or DNS name (or a list of them)")
        }
        var proto = EgressGatewayProtocol.istio
        if let protocolNode = YAMLReader.value(mapping, "protocol"), let text = reader.string(protocolNode, "egressGateway.protocol") {
            if let parsed = EgressGatewayProtocol(rawValue: text.lowercased()) {
                proto = parsed
            } else {
                reader.error("egressGateway.protocol", at: protocolNode, "must be istio or connect, not \"\(text)\"")
            }
        }
        var httpPort = 80, tlsPort = 443, connectPort = 15080
        if let portsNode = YAMLReader.value(mapping, "ports"), let ports = reader.mapping(portsNode, "egressGateway.ports") {
            reader.checkKeys(ports, allowed: ["http", "tls", "connect"], prefix: "egressGateway.ports")
            if let n = YAMLReader.value(ports, "http"), let v = reader.int(n, "egressGateway.ports.http", in: 1...65535) { httpPort = v }
            if let n = YAMLReader.value(ports, "tls"), let v = reader.int(n, "egressGateway.ports.tls", in: 1...65535) { tlsPort = v }
            if let n = YAMLReader.value(ports, "connect"), let v = reader.int(n, "egressGateway.ports.connect", in: 1...65535) {
                connectPort = v
            }
        }
        var hosts = ["*"]
        if let hostsNode = YAMLReader.value(mapping, "hosts"), let list = reader.stringList(hostsNode, "egressGateway.hosts", allowSingle: true) {
            hosts = list
            for (index, glob) in list.enumerated() {
                let name = glob.hasPrefix("*.") ? Substring(glob.dropFirst(2)) : Substring(glob)
                if glob != "*", !ServiceEntry.isDNSName(name) {
                    reader.error("egressGateway.hosts[\(index)]", at: hostsNode.sequence?[index] ?? hostsNode,
                                 "\"\(glob)\" is not \"*\", \"*.domain\" or a host name")
                }
            }
        }
        var connectTimeout = Duration.seconds(1)
        if let timeoutNode = YAMLReader.value(mapping, "connectTimeout"),
           let value = decodeDuration(timeoutNode, "egressGateway.connectTimeout", allowZero: false, &reader) {
            connectTimeout = value
        }
        let tls = YAMLReader.value(mapping, "tls").flatMap { decodeGatewayClientTLS($0, "egressGateway.tls", &reader) }
        if tls != nil, proto == .connect {
            reader.error("egressGateway.tls", at: YAMLReader.value(mapping, "tls"), "ISTIO_MUTUAL needs protocol: istio (CONNECT tunnels stay plaintext to the gateway)")
        }
        guard !reader.diagnostics[errorsBefore...].contains(where: \.isError) else { return nil }
        return EgressGatewayConfig(
            addresses: addresses, protocol: proto, httpPort: httpPort, tlsPort: tlsPort, connectPort: connectPort,
            hosts: hosts, connectTimeout: connectTimeout, tls: tls)
    }

    private static func decodeListeners(_ node: Node, _ reader: inout YAMLReader) -> [ListenerConfig] {
        guard let items = reader.sequence(node, "listeners") else { return [] }
        var result: [ListenerConfig] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let field = "listeners[\(index)]"
            guard let mapping = reader.mapping(item, field) else { continue }
            reader.checkKeys(mapping, allowed: ["port", "protocol", "address", "tls"], prefix: field)
            var port: Int?
            if let portNode = YAMLReader.value(mapping, "port") {
                port = reader.int(portNode, field + ".port", in: 1...65535)
            } else {
                reader.error(field + ".port", at: item, "required")
            }
            var proto: ListenerProtocol?
            if let protocolNode = YAMLReader.value(mapping, "protocol"), let text = reader.string(protocolNode, field + ".protocol") {
                proto = ListenerProtocol(rawValue: text.uppercased())
                if proto == nil { reader.error(field + ".protocol", at: protocolNode, "must be HTTP, TLS or CONNECT, not \"\(text)\"") }
            } else {
                reader.error(field + ".protocol", at: item, "required (HTTP, TLS or CONNECT)")
            }
            var address = "0.0.0.0"
            if let addressNode = YAMLReader.value(mapping, "address"), let text = reader.string(addressNode, field + ".address") {
                if let ip = IPAddress(text) {
                    address = ip.description
                } else {
                    reader.error(field + ".address", at: addressNode, "\"\(text)\" is not an IP address")
                }
            }
            let tls = YAMLReader.value(mapping, "tls").flatMap { decodeServerTLS($0, field + ".tls", &reader) } ?? .passthrough
            if tls == .istioMutual, proto == .connect {
                reader.error(field + ".tls", at: YAMLReader.value(mapping, "tls"), "ISTIO_MUTUAL is for HTTP and TLS listeners, not CONNECT")
            }
            guard let port, let proto else { continue }
            let key = "\(address) \(port)"
            if let first = seen[key] {
                reader.error(field + ".port", at: YAMLReader.value(mapping, "port"),
                             "port \(port) on \(address) is already used by listeners[\(first)]")
                continue
            }
            seen[key] = index
            result.append(ListenerConfig(port: port, protocol: proto, address: address, tls: tls))
        }
        return result
    }

    private static func decodeLimits(_ mapping: Node.Mapping, _ reader: inout YAMLReader) -> Limits {
        let defaults = Limits()
        reader.checkKeys(mapping, allowed: [
            "maxRequestHeadBytes", "headerReadTimeout", "detectionTimeout", "drainPeriod", "connectTimeout", "idleTimeout",
            "upstreamTimeout", "maxRequestHeaders", "maxConnections",
        ], prefix: "limits")
        func duration(_ key: String, _ fallback: Duration, allowZero: Bool = false) -> Duration {
            guard let node = YAMLReader.value(mapping, key) else { return fallback }
            return decodeDuration(node, "limits." + key, allowZero: allowZero, &reader) ?? fallback
        }
        var headBytes = defaults.maxRequestHeadBytes
        if let node = YAMLReader.value(mapping, "maxRequestHeadBytes"),
           let value = reader.int(node, "limits.maxRequestHeadBytes", in: 1024...(16 << 20), what: " bytes") {
            headBytes = value
        }
        var headerCount = defaults.maxRequestHeaders
        if let node = YAMLReader.value(mapping, "maxRequestHeaders"),
           let value = reader.int(node, "limits.maxRequestHeaders", in: 1...10_000) {
            headerCount = value
        }
        var connections = defaults.maxConnections
        if let node = YAMLReader.value(mapping, "maxConnections"),
           let value = reader.int(node, "limits.maxConnections", in: 1...1_000_000) {
            connections = value
        }
        return Limits(
            maxRequestHeadBytes: headBytes,
            maxRequestHeaders: headerCount,
            maxConnections: connections,
            headerReadTimeout: duration("headerReadTimeout", defaults.headerReadTimeout),
            detectionTimeout: duration("detectionTimeout", defaults.detectionTimeout),
            drainPeriod: duration("drainPeriod", defaults.drainPeriod, allowZero: true),
            connectTimeout: duration("connectTimeout", defaults.connectTimeout),
            idleTimeout: duration("idleTimeout", defaults.idleTimeout),
            upstreamTimeout: duration("upstreamTimeout", defaults.upstreamTimeout))
    }

    static func decodeDuration(_ node: Node, _ field: String, allowZero: Bool, _ reader: inout YAMLReader) -> Duration? {
        guard let text = reader.string(node, field) else {
            reader.error(field, at: node, "must be a duration such as \"500ms\", \"1s\" or \"1m\"")
            return nil
        }
        guard let value = DurationText.parse(text) else {
            reader.error(field, at: node, "\"\(text)\" is not a duration; write it with a unit, e.g. \"500ms\", \"1s\" or \"1m\"")
            return nil
        }
        if value == .zero, !allowZero {
            reader.error(field, at: node, "must be greater than zero")
            return nil
        }
        return value
    }
}

/// Durations as Istio and Envoy write them in YAML (Go's `time.ParseDuration` syntax):
/// `500ms`, `1s`, `1.5s`, `1m30s`, `1h`; units ns, us (or µs), ms, s, m, h.
public enum DurationText {
    /// Parses a duration string; nil if it is not one (a bare number has no unit and is refused).
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [
            ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
            ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ]
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        while !rest.isEmpty {
            let whole = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(whole.count)
            var fraction: Substring = ""
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            // Longest unit name first, so "ms" is not read as "m" followed by "s".
            guard let (unit, scale) = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            guard let wholeValue = whole.isEmpty ? 0 : Int64(whole) else { return nil }
            let (scaled, overflow) = wholeValue.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            var fractionNanos: Int64 = 0
            var divisor: Int64 = 1
            for digit in fraction.prefix(18) {
                guard let value = digit.wholeNumberValue else { return nil }
                fractionNanos = fractionNanos * 10 + Int64(value)
                divisor *= 10
            }
            // scale ≤ 3.6e12 and fraction < divisor ≤ 1e18: do the product in Double to stay in range.
            let fractionPart = Int64((Double(fractionNanos) / Double(divisor) * Double(scale)).rounded())
            let (sum, overflow2) = total.addingReportingOverflow(scaled)
            let (withFraction, overflow3) = sum.addingReportingOverflow(fractionPart)
            guard !overflow2, !overflow3 else { return nil }
            total = withFraction
        }
        return .nanoseconds(total)
    }

    /// Formats a duration the same way (`1s`, `500ms`, `1m30s`), for messages and `sluice explain`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanos == 0 { return "0s" }
        var text = ""
        if nanos < 0 { text = "-"; nanos = -nanos }
        if nanos < 1_000_000_000 {
            if nanos % 1_000_000 == 0 { return text + "\(nanos / 1_000_000)ms" }
            if nanos % 1_000 == 0 { return text + "\(nanos / 1_000)us" }
            return text + "\(nanos)ns"
        }
        let hours = nanos / 3_600_000_000_000
        let minutes = nanos / 60_000_000_000 % 60
        let rest = nanos % 60_000_000_000
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        if rest > 0 {
            // Go style: fractional seconds with trailing zeros removed ("1.5s", "1m30.25s").
            var fraction = String(rest % 1_000_000_000)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "\(rest / 1_000_000_000)" + (fraction.isEmpty ? "" : "." + fraction) + "s"
        }
        return text
    }
}
