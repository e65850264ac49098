import Yams

/// DestinationRule `trafficPolicy` (top level, per subset, per port) and ASM's
/// ASMEgressTrafficPolicy.
extension RoutingObjectDecoder {
    static func decodeTrafficPolicy(_ node: Node, _ field: String, _ reader: inout YAMLReader, portLevel: Bool = false) -> TrafficPolicy? {
        guard let mapping = reader.mapping(node, field) else { return nil }
        var allowed: Set<String> = ["connectionPool", "outlierDetection", "loadBalancer", "tls", "portLevelSettings", "tunnel", "proxyProtocol"]
        if portLevel { allowed = ["port", "connectionPool", "outlierDetection", "loadBalancer", "tls"] }
        reader.checkKeys(mapping, allowed: allowed, prefix: field, severity: .warning)
        for unapplied in ["tunnel", "proxyProtocol"] where YAMLReader.value(mapping, unapplied) != nil {
            reader.note(field + "." + unapplied, at: YAMLReader.value(mapping, unapplied), "not applied by Sluice")
        }
        var policy = TrafficPolicy()
        if let poolNode = YAMLReader.value(mapping, "connectionPool"), let pool = reader.mapping(poolNode, field + ".connectionPool") {
            var settings = ConnectionPoolSettings()
            if let tcpNode = YAMLReader.value(pool, "tcp"), let tcp = reader.mapping(tcpNode, field + ".connectionPool.tcp") {
                settings.maxConnections = YAMLReader.value(tcp, "maxConnections").flatMap { reader.int($0, field + ".connectionPool.tcp.maxConnections", in: 1...Int(Int32.max)) }
                settings.connectTimeout = YAMLReader.value(tcp, "connectTimeout").flatMap { reader.duration($0, field + ".connectionPool.tcp.connectTimeout") }
            }
            if let httpNode = YAMLReader.value(pool, "http"), let http = reader.mapping(httpNode, field + ".connectionPool.http") {
                let prefix = field + ".connectionPool.http."
                settings.http1MaxPendingRequests = YAMLReader.value(http, "http1MaxPendingRequests").flatMap { reader.int($0, prefix + "http1MaxPendingRequests", in: 1...Int(Int32.max)) }
                settings.http2MaxRequests = YAMLReader.value(http, "http2MaxRequests").flatMap { reader.int($0, prefix + "http2MaxRequests", in: 1...Int(Int32.max)) }
                settings.maxRequestsPerConnection = YAMLReader.value(http, "maxRequestsPerConnection").flatMap { reader.int($0, prefix + "maxRequestsPerConnection", in: 0...Int(Int32.max)) }
                settings.maxRetries = YAMLReader.value(http, "maxRetries").flatMap { reader.int($0, prefix + "maxRetries", in: 0...Int(Int32.max)) }
                settings.idleTimeout = YAMLReader.value(http, "idleTimeout").flatMap { reader.duration($0, prefix + "idleTimeout") }
                if let node = YAMLReader.value(http, "h2UpgradePolicy"), let text = reader.string(node, prefix + "h2UpgradePolicy") {
                    settings.h2UpgradePolicy = H2UpgradePolicy(rawValue: text)
                    if settings.h2UpgradePolicy == nil {
                        reader.error(prefix + "h2UpgradePolicy", at: node, "must be DEFAULT, DO_NOT_UPGRADE or UPGRADE")
                    }
                }
                settings.useClientProtocol = YAMLReader.value(http, "useClientProtocol").flatMap { reader.bool($0, prefix + "useClientProtocol") }
            }
            policy.connectionPool = settings
        }
        if let outlierNode = YAMLReader.value(mapping, "outlierDetection"), let outlier = reader.mapping(outlierNode, field + ".outlierDetection") {
            let prefix = field + ".outlierDetection."
            var settings = OutlierDetectionSettings()
            settings.consecutive5xxErrors = YAMLReader.value(outlier, "consecutive5xxErrors").flatMap { reader.int($0, prefix + "consecutive5xxErrors", in: 0...Int(Int32.max)) }
            settings.consecutiveGatewayErrors = YAMLReader.value(outlier, "consecutiveGatewayErrors").flatMap { reader.int($0, prefix + "consecutiveGatewayErrors", in: 0...Int(Int32.max)) }
            settings.interval = YAMLReader.value(outlier, "interval").flatMap { reader.duration($0, prefix + "interval") }
            settings.baseEjectionTime = YAMLReader.value(outlier, "baseEjectionTime").flatMap { reader.duration($0, prefix + "baseEjectionTime") }
            settings.maxEjectionPercent = YAMLReader.value(outlier, "maxEjectionPercent").flatMap { reader.int($0, prefix + "maxEjectionPercent", in: 0...100) }
            policy.outlierDetection = settings
        }
        if let lbNode = YAMLReader.value(mapping, "loadBalancer"), let lb = reader.mapping(lbNode, field + ".loadBalancer") {
            if let simpleNode = YAMLReader.value(lb, "simple"), let simple = reader.string(simpleNode, field + ".loadBalancer.simple") {
                if ["ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "UNSPECIFIED"].contains(simple) {
                    policy.loadBalancer = simple
                } else {
                    reader.error(field + ".loadBalancer.simple", at: simpleNode, "must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH")
                }
            } else {
                reader.note(field + ".loadBalancer", at: lbNode, "only loadBalancer.simple is applied by Sluice")
            }
        }
        if let tlsNode = YAMLReader.value(mapping, "tls"), let tls = reader.mapping(tlsNode, field + ".tls") {
            let modeNode = YAMLReader.value(tls, "mode")
            let mode = modeNode.flatMap { reader.string($0, field + ".tls.mode") } ?? "DISABLE"
            if !["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"].contains(mode) {
                reader.error(field + ".tls.mode", at: modeNode, "must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL")
            }
            policy.tls = decodeClientTLS(tls, mode: mode, field + ".tls", &reader)
        }
        if !portLevel, let levelNode = YAMLReader.value(mapping, "portLevelSettings"), let items = reader.sequence(levelNode, field + ".portLevelSettings") {
            for (index, item) in items.enumerated() {
                let itemField = "\(field).portLevelSettings[\(index)]"
                guard let itemMapping = reader.mapping(item, itemField) else { continue }
                guard let port = reader.portNumber(itemMapping, "port", itemField + ".port") else {
                    if YAMLReader.value(itemMapping, "port") == nil { reader.error(itemField + ".port", at: item, "required") }
                    continue
                }
                if let level = decodeTrafficPolicy(item, itemField, &reader, portLevel: true) { policy.portLevel[port] = level }
            }
        }
        return policy
    }

    /// The fields of `tls` besides `mode`. Files are read when a connection needs them; a
    /// MUTUAL without client certificate files or a credentialName is an error here, as
    /// Istio's validation has it.
    static func decodeClientTLS(_ tls: Node.Mapping, mode: String, _ field: String, _ reader: inout YAMLReader) -> ClientTLSSettings {
        reader.checkKeys(tls, allowed: ["mode", "sni", "caCertificates", "clientCertificate", "privateKey", "credentialName",
                                        "subjectAltNames", "insecureSkipVerify", "caCrl"], prefix: field, severity: .warning)
        func text(_ key: String) -> String? {
            YAMLReader.value(tls, key).flatMap { reader.string($0, field + "." + key) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var settings = ClientTLSSettings(mode: mode, sni: text("sni"))
        settings.caCertificates = text("caCertificates")
        settings.clientCertificate = text("clientCertificate")
        settings.privateKey = text("privateKey")
        settings.credentialName = text("credentialName")
        settings.subjectAltNames = YAMLReader.value(tls, "subjectAltNames").flatMap { reader.stringList($0, field + ".subjectAltNames") } ?? []
        settings.insecureSkipVerify = YAMLReader.value(tls, "insecureSkipVerify").flatMap { reader.bool($0, field + ".insecureSkipVerify") } ?? false
        if let crl = YAMLReader.value(tls, "caCrl") {
            settings.otherFields.append("caCrl")
            reader.note(field + ".caCrl", at: crl, "not applied by Sluice")
        }
        if mode == "MUTUAL", settings.credentialName == nil, settings.clientCertificate == nil || settings.privateKey == nil {
            reader.error(field + ".clientCertificate", at: YAMLReader.value(tls, "mode"),
                         "MUTUAL needs clientCertificate and privateKey, or credentialName")
        }
        return settings
    }

    // MARK: ASMEgressTrafficPolicy

    static func decodeASMPolicy(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> ASMEgressTrafficPolicy? {
        reader.checkKeys(spec, allowed: ["byEgressGateway", "egressRules"], prefix: "spec", severity: .warning)
        guard let gatewayNode = YAMLReader.value(spec, "byEgressGateway"), let gateway = reader.mapping(gatewayNode, "spec.byEgressGateway"),
              let gatewayName = (YAMLReader.value(gateway, "name") ?? YAMLReader.value(gateway, "host"))
                .flatMap({ reader.string($0, "spec.byEgressGateway.name") }), !gatewayName.isEmpty
        else {
            reader.error("spec.byEgressGateway.name", at: YAMLReader.value(spec, "byEgressGateway"), "required: the egress gateway")
            return nil
        }
        if id.name != gatewayName.split(separator: ".").first.map(String.init) ?? gatewayName, !id.name.hasSuffix(gatewayName) {
            reader.note("metadata.name", at: nil, "ASM expects the resource to be named after its egress gateway (\(gatewayName))")
        }
        var rules: [ASMEgressTrafficPolicy.Rule] = []
        guard let rulesNode = YAMLReader.value(spec, "egressRules"), let items = reader.sequence(rulesNode, "spec.egressRules") else {
            reader.error("spec.egressRules", at: nil, "required")
            return nil
        }
        for (index, item) in items.enumerated() {
            let field = "spec.egressRules[\(index)]"
            guard let rule = reader.mapping(item, field) else { continue }
            var from: [ASMEgressTrafficPolicy.From] = []
            for (fromIndex, fromNode) in (YAMLReader.value(rule, "from").flatMap { reader.sequence($0, field + ".from") } ?? []).enumerated() {
                let fromField = "\(field).from[\(fromIndex)]"
                guard let mapping = reader.mapping(fromNode, fromField) else { continue }
                guard let namespace = YAMLReader.value(mapping, "namespace").flatMap({ reader.string($0, fromField + ".namespace") }) else {
                    reader.error(fromField + ".namespace", at: fromNode, "required")
                    continue
                }
                let selector = YAMLReader.value(mapping, "workloadSelector").flatMap { reader.stringMap($0, fromField + ".workloadSelector") } ?? [:]
                from.append(.init(namespace: namespace, workloadSelector: selector))
            }
            if from.isEmpty { reader.error(field + ".from", at: item, "at least one from item is required") }
            var to: [ASMEgressTrafficPolicy.To] = []
            for (toIndex, toNode) in (YAMLReader.value(rule, "to").flatMap { reader.sequence($0, field + ".to") } ?? []).enumerated() {
                let toField = "\(field).to[\(toIndex)]"
                guard let mapping = reader.mapping(toNode, toField) else { continue }
                let name = YAMLReader.value(mapping, "name").flatMap { reader.string($0, toField + ".name") } ?? "to-\(index)-\(toIndex)"
                let hosts = (YAMLReader.value(mapping, "hosts").flatMap { reader.stringList($0, toField + ".hosts") } ?? []).map { $0.lowercased() }
                if hosts.isEmpty { reader.error(toField + ".hosts", at: toNode, "at least one host is required") }
                guard let portNode = YAMLReader.value(mapping, "port"), let port = reader.mapping(portNode, toField + ".port"),
                      let number = YAMLReader.value(port, "number").flatMap({ reader.int($0, toField + ".port.number", in: 1...65535) })
                else {
                    reader.error(toField + ".port.number", at: toNode, "required")
                    continue
                }
                let proto = (YAMLReader.value(port, "protocol").flatMap { reader.string($0, toField + ".port.protocol") } ?? "HTTP").uppercased()
                if !["HTTP", "HTTPS", "TLS", "TCP"].contains(proto) {
                    reader.error(toField + ".port.protocol", at: portNode, "must be HTTP, HTTPS, TLS or TCP")
                }
                let portName = YAMLReader.value(port, "name").flatMap { reader.string($0, toField + ".port.name") } ?? ""
                var gatewayPort: Int?
                if let byNode = YAMLReader.value(mapping, "byEgressGateway"), let by = reader.mapping(byNode, toField + ".byEgressGateway") {
                    gatewayPort = YAMLReader.value(by, "port").flatMap { reader.int($0, toField + ".byEgressGateway.port", in: 1...65535) }
                }
                var upgrade = false
                var upgradePort = 443
                if let node = YAMLReader.value(mapping, "httpsUpgrade") {
                    if node.scalar != nil {
                        upgrade = reader.bool(node, toField + ".httpsUpgrade") ?? false
                    } else if let settings = reader.mapping(node, toField + ".httpsUpgrade") {
                        upgrade = YAMLReader.value(settings, "enabled").flatMap { reader.bool($0, toField + ".httpsUpgrade.enabled") } ?? false
                        upgradePort = YAMLReader.value(settings, "port").flatMap { reader.int($0, toField + ".httpsUpgrade.port", in: 1...65535) } ?? 443
                    }
                    if upgrade, proto != "HTTP" {
                        reader.error(toField + ".httpsUpgrade", at: node, "applies to HTTP only (port.protocol is \(proto))")
                    }
                }
                var item = ASMEgressTrafficPolicy.To(name: name, hosts: hosts, port: number, protocol: proto, portName: portName, gatewayPort: gatewayPort, httpsUpgrade: upgrade)
                item.httpsUpgradePort = upgradePort
                to.append(item)
            }
            if to.isEmpty { reader.error(field + ".to", at: item, "at least one to item is required") }
            rules.append(.init(from: from, to: to))
        }
        return ASMEgressTrafficPolicy(id: id, gatewayName: gatewayName, rules: rules, source: source)
    }
}
