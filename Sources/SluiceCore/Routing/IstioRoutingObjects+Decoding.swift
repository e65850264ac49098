import Yams

/// Decoding and validation of Gateway, VirtualService, DestinationRule and Sidecar resources:
/// required fields and types as Istio's validation checks them, every diagnostic with
/// `path:line`, the resource and the field. An invalid object is left out on its own.
enum RoutingObjectDecoder {
    /// The kinds decoded here.
    static let kinds: Set<String> = ["Gateway", "VirtualService", "DestinationRule", "Sidecar", "ASMEgressTrafficPolicy"]
    /// ASM's API group.
    static let asmAPIVersions = ["istio.alibabacloud.com/v1beta1"]

    /// Decodes one resource of a kind in `kinds` into `objects`; returns its diagnostics and,
    /// when it was rejected, its id.
    static func decode(
        kind: String, _ node: Node, path: String, into objects: inout RoutingObjects
    ) -> (diagnostics: [ConfigDiagnostic], rejected: RoutingObjectID?) {
        let line = YAMLReader.line(of: node) ?? 1
        var reader = YAMLReader(path: path, resource: kind, fallbackLine: line)
        guard let resource = reader.mapping(node, "") else {
            return (reader.sortedDiagnostics, RoutingObjectID(kind: kind, namespace: "default", name: "(unnamed)"))
        }
        var name = ""
        var namespace = "default"
        if let metadataNode = YAMLReader.value(resource, "metadata"), let metadata = reader.mapping(metadataNode, "metadata") {
            if let nameNode = YAMLReader.value(metadata, "name"), let text = reader.string(nameNode, "metadata.name") { name = text }
            if let nsNode = YAMLReader.value(metadata, "namespace"), let text = reader.string(nsNode, "metadata.namespace"), !text.isEmpty {
                namespace = text
            }
        }
        let id = RoutingObjectID(kind: kind, namespace: namespace, name: name.isEmpty ? "(unnamed)" : name)
        reader.resource = id.description
        if name.isEmpty { reader.error("metadata.name", at: YAMLReader.value(resource, "metadata"), "required") }
        if let versionNode = YAMLReader.value(resource, "apiVersion"), let version = reader.string(versionNode, "apiVersion") {
            let versions = kind == "ASMEgressTrafficPolicy" ? asmAPIVersions : ServiceEntry.supportedAPIVersions
            if !versions.contains(version) {
                reader.error("apiVersion", at: versionNode,
                             "unsupported apiVersion \"\(version)\"; expected one of \(versions.joined(separator: ", "))")
            }
        } else {
            reader.error("apiVersion", at: nil, "required")
        }
        guard let specNode = YAMLReader.value(resource, "spec"), let spec = reader.mapping(specNode, "spec") else {
            if YAMLReader.value(resource, "spec") == nil { reader.error("spec", at: nil, "required") }
            return (reader.sortedDiagnostics, id)
        }
        if let specLine = YAMLReader.line(of: specNode) { reader.fallbackLine = specLine }
        let source = SourceLocation(path: path, line: line)
        var decoded = RoutingObjects()
        switch kind {
        case "Gateway": decodeGateway(spec, id: id, source: source, &reader).map { decoded.gateways.append($0) }
        case "VirtualService": decodeVirtualService(spec, id: id, source: source, &reader).map { decoded.virtualServices.append($0) }
        case "DestinationRule": decodeDestinationRule(spec, id: id, source: source, &reader).map { decoded.destinationRules.append($0) }
        case "Sidecar": decodeSidecar(spec, id: id, source: source, &reader).map { decoded.sidecars.append($0) }
        default: decodeASMPolicy(spec, id: id, source: source, &reader).map { decoded.egressTrafficPolicies.append($0) }
        }
        guard !reader.hasErrors else { return (reader.sortedDiagnostics, id) }
        objects.append(decoded)
        return (reader.sortedDiagnostics, nil)
    }

    // MARK: Gateway

    private static func decodeGateway(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> IstioGateway? {
        reader.checkKeys(spec, allowed: ["selector", "servers"], prefix: "spec", severity: .warning)
        var selector: [String: String] = [:]
        if let node = YAMLReader.value(spec, "selector") { selector = reader.stringMap(node, "spec.selector") ?? [:] }
        var servers: [IstioGateway.Server] = []
        guard let serversNode = YAMLReader.value(spec, "servers"), let items = reader.sequence(serversNode, "spec.servers"), !items.isEmpty else {
            reader.error("spec.servers", at: YAMLReader.value(spec, "servers"), "at least one server is required")
            return nil
        }
        for (index, item) in items.enumerated() {
            let field = "spec.servers[\(index)]"
            guard let server = reader.mapping(item, field) else { continue }
            guard let portNode = YAMLReader.value(server, "port"), let port = reader.mapping(portNode, field + ".port") else {
                reader.error(field + ".port", at: item, "required")
                continue
            }
            let number = YAMLReader.value(port, "number").flatMap { reader.int($0, field + ".port.number", in: 1...65535) }
            if YAMLReader.value(port, "number") == nil { reader.error(field + ".port.number", at: portNode, "required") }
            let portName = YAMLReader.value(port, "name").flatMap { reader.string($0, field + ".port.name") } ?? ""
            let proto = YAMLReader.value(port, "protocol").flatMap { reader.string($0, field + ".port.protocol") }?.uppercased() ?? ""
            if !["HTTP", "HTTPS", "HTTP2", "GRPC", "TLS", "TCP", "MONGO"].contains(proto) {
                reader.error(field + ".port.protocol", at: YAMLReader.value(port, "protocol") ?? portNode,
                             "must be HTTP, HTTPS, HTTP2, GRPC, TLS, TCP or MONGO")
            }
            let hosts = YAMLReader.value(server, "hosts").flatMap { reader.stringList($0, field + ".hosts") } ?? []
            if hosts.isEmpty { reader.error(field + ".hosts", at: item, "at least one host is required") }
            var tlsMode: String?
            var tlsFiles: ServerTLSFiles?
            if let tlsNode = YAMLReader.value(server, "tls"), let tls = reader.mapping(tlsNode, field + ".tls") {
                reader.checkKeys(tls, allowed: Self.serverTLSKeys, prefix: field + ".tls", severity: .warning)
                for unapplied in ["httpsRedirect", "caCrl", "credentialNames", "tlsCertificates", "verifyCertificateSpki", "verifyCertificateHash"]
                where YAMLReader.value(tls, unapplied) != nil {
                    reader.note(field + ".tls." + unapplied, at: YAMLReader.value(tls, unapplied), "not applied by Sluice")
                }
                tlsMode = YAMLReader.value(tls, "mode").flatMap { reader.string($0, field + ".tls.mode") }
                if tlsMode == "SIMPLE" || tlsMode == "MUTUAL" {
                    guard let files = decodeServerTLSFiles(tls, mode: tlsMode ?? "", field + ".tls", at: tlsNode, &reader) else { continue }
                    tlsFiles = files
                }
            }
            if (proto == "HTTPS" || proto == "TLS") && tlsMode == nil {
                reader.error(field + ".tls", at: item, "a \(proto) server needs tls.mode (PASSTHROUGH for egress passthrough)")
            } else if let mode = tlsMode, !["PASSTHROUGH", "ISTIO_MUTUAL", "SIMPLE", "MUTUAL"].contains(mode) {
                reader.note(field + ".tls.mode", at: item, "tls.mode \(mode) is not applied by Sluice: this server is not routed")
            }
            if let number {
                var decoded = IstioGateway.Server(port: number, portName: portName, protocol: proto, hosts: hosts, tlsMode: tlsMode)
                decoded.tlsFiles = tlsFiles
                servers.append(decoded)
            }
        }
        return IstioGateway(id: id, selector: selector, servers: servers, source: source)
    }

    /// A SIMPLE / MUTUAL server's certificate: files, or a credentialName; MUTUAL also
    /// needs the CAs client certificates must chain to (`caCertificates`, or the credential's
    /// `ca.crt`). Nil (with the error) when there is no certificate.
    private static func decodeServerTLSFiles(
        _ tls: Node.Mapping, mode: String, _ field: String, at node: Node, _ reader: inout YAMLReader
    ) -> ServerTLSFiles? {
        func text(_ key: String) -> String? {
            YAMLReader.value(tls, key).flatMap { reader.string($0, field + "." + key) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var files = ServerTLSFiles(
            serverCertificate: text("serverCertificate"), privateKey: text("privateKey"),
            caCertificates: text("caCertificates"), credentialName: text("credentialName"))
        if files.credentialName == nil, files.serverCertificate == nil || files.privateKey == nil {
            reader.error(field, at: node, "\(mode) needs serverCertificate and privateKey, or credentialName")
            return nil
        }
        if let names = YAMLReader.value(tls, "subjectAltNames").flatMap({ reader.stringList($0, field + ".subjectAltNames") }) {
            if mode == "MUTUAL" {
                files.subjectAltNames = names
            } else if !names.isEmpty {
                reader.note(field + ".subjectAltNames", at: YAMLReader.value(tls, "subjectAltNames"), "applies to MUTUAL only (no client certificate is asked for)")
            }
        }
        for key in ["minProtocolVersion", "maxProtocolVersion"] {
            guard let version = text(key)?.uppercased(), version != "TLS_AUTO" else { continue }
            guard ServerTLSFiles.protocolVersions.contains(version) else {
                reader.error(field + "." + key, at: YAMLReader.value(tls, key), "must be TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2 or TLSV1_3, not \"\(version)\"")
                return nil
            }
            if key == "minProtocolVersion" { files.minProtocolVersion = version } else { files.maxProtocolVersion = version }
        }
        if let low = files.minProtocolVersion, let high = files.maxProtocolVersion, low > high {
            reader.error(field + ".maxProtocolVersion", at: YAMLReader.value(tls, "maxProtocolVersion"), "is lower than minProtocolVersion \(low)")
            return nil
        }
        files.cipherSuites = YAMLReader.value(tls, "cipherSuites").flatMap { reader.stringList($0, field + ".cipherSuites") } ?? []
        return files
    }

    /// Istio's `ServerTLSSettings` fields.
    static let serverTLSKeys: Set<String> = [
        "mode", "serverCertificate", "privateKey", "caCertificates", "credentialName", "subjectAltNames", "minProtocolVersion",
        "maxProtocolVersion", "cipherSuites", "httpsRedirect", "caCrl", "credentialNames", "tlsCertificates", "verifyCertificateSpki",
        "verifyCertificateHash",
    ]

    // MARK: VirtualService

    private static func decodeVirtualService(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> VirtualService? {
        reader.checkKeys(spec, allowed: ["hosts", "gateways", "http", "tls", "tcp", "exportTo"], prefix: "spec", severity: .warning)
        let hosts = YAMLReader.value(spec, "hosts").flatMap { reader.stringList($0, "spec.hosts") } ?? []
        let gateways = YAMLReader.value(spec, "gateways").flatMap { reader.stringList($0, "spec.gateways") } ?? []
        let exportTo = YAMLReader.value(spec, "exportTo").flatMap { reader.stringList($0, "spec.exportTo") } ?? []
        if hosts.isEmpty, gateways.isEmpty || gateways.contains("mesh") {
            reader.error("spec.hosts", at: YAMLReader.value(spec, "hosts"), "at least one host is required")
        }
        var routes: [VirtualServiceRoute] = []
        for kind in [VirtualServiceRoute.Kind.http, .tls, .tcp] {
            guard let listNode = YAMLReader.value(spec, kind.rawValue), let items = reader.sequence(listNode, "spec." + kind.rawValue) else { continue }
            for (index, item) in items.enumerated() {
                let field = "spec.\(kind.rawValue)[\(index)]"
                guard let route = reader.mapping(item, field) else { continue }
                if let parsed = decodeRoute(route, kind: kind, field: field, at: item, &reader) { routes.append(parsed) }
            }
        }
        return VirtualService(id: id, hosts: hosts, gateways: gateways.isEmpty ? ["mesh"] : gateways, exportTo: exportTo, routes: routes, source: source)
    }

    // MARK: DestinationRule

    private static func decodeDestinationRule(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> DestinationRule? {
        reader.checkKeys(spec, allowed: ["host", "subsets", "trafficPolicy", "exportTo", "workloadSelector"], prefix: "spec", severity: .warning)
        guard let hostNode = YAMLReader.value(spec, "host"), let host = reader.string(hostNode, "spec.host"), !host.isEmpty else {
            reader.error("spec.host", at: YAMLReader.value(spec, "host"), "required")
            return nil
        }
        var subsets: [String] = []
        var details: [DestinationSubset] = []
        if let subsetsNode = YAMLReader.value(spec, "subsets"), let items = reader.sequence(subsetsNode, "spec.subsets") {
            for (index, item) in items.enumerated() {
                let field = "spec.subsets[\(index)]"
                guard let subset = reader.mapping(item, field) else { continue }
                guard let nameNode = YAMLReader.value(subset, "name"), let name = reader.string(nameNode, field + ".name"), !name.isEmpty else {
                    reader.error(field + ".name", at: item, "required")
                    continue
                }
                if subsets.contains(name) { reader.error(field + ".name", at: nameNode, "duplicate subset \"\(name)\"") }
                reader.checkKeys(subset, allowed: ["name", "labels", "trafficPolicy"], prefix: field, severity: .warning)
                subsets.append(name)
                let labels = YAMLReader.value(subset, "labels").flatMap { reader.stringMap($0, field + ".labels") } ?? [:]
                let policy = YAMLReader.value(subset, "trafficPolicy").flatMap { decodeTrafficPolicy($0, field + ".trafficPolicy", &reader) }
                details.append(DestinationSubset(name: name, labels: labels, trafficPolicy: policy))
            }
        }
        let policy = YAMLReader.value(spec, "trafficPolicy").flatMap { decodeTrafficPolicy($0, "spec.trafficPolicy", &reader) }
        let tlsMode = policy?.tls?.mode
        let selector = reader.selectorLabels(spec, key: "workloadSelector", labelsKey: "matchLabels", "spec.workloadSelector")
        let exportTo = YAMLReader.value(spec, "exportTo").flatMap { reader.stringList($0, "spec.exportTo") } ?? []
        return DestinationRule(
            id: id, host: host.lowercased(), subsets: subsets, tlsMode: tlsMode, exportTo: exportTo, source: source,
            subsetDetails: details, trafficPolicy: policy, workloadSelector: selector)
    }

    // MARK: Sidecar

    private static func decodeSidecar(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> SidecarResource? {
        reader.checkKeys(spec, allowed: ["workloadSelector", "egress", "ingress", "outboundTrafficPolicy", "inboundConnectionPool"],
                         prefix: "spec", severity: .warning)
        var selector: [String: String]?
        if let selectorNode = YAMLReader.value(spec, "workloadSelector"), let mapping = reader.mapping(selectorNode, "spec.workloadSelector"),
           let labels = YAMLReader.value(mapping, "labels") {
            selector = reader.stringMap(labels, "spec.workloadSelector.labels")
        }
        var hosts: [String] = []
        var listeners: [SidecarResource.EgressListener] = []
        if let egressNode = YAMLReader.value(spec, "egress"), let items = reader.sequence(egressNode, "spec.egress") {
            for (index, item) in items.enumerated() {
                let field = "spec.egress[\(index)]"
                guard let egress = reader.mapping(item, field) else { continue }
                let list = YAMLReader.value(egress, "hosts").flatMap { reader.stringList($0, field + ".hosts") } ?? []
                if list.isEmpty { reader.error(field + ".hosts", at: item, "at least one namespace/dnsName host is required") }
                for (hostIndex, host) in list.enumerated() where !host.contains("/") {
                    reader.error("\(field).hosts[\(hostIndex)]", at: YAMLReader.value(egress, "hosts"),
                                 "\"\(host)\" must be namespace/dnsName (use */\(host) for any namespace)")
                }
                hosts += list
                let port = reader.portNumber(egress, "port", field + ".port")
                listeners.append(.init(port: port, hosts: list))
            }
        }
        var mode: OutboundTrafficPolicyMode?
        var proxyHost: String?
        var proxyDestination: RouteDestination?
        if let policyNode = YAMLReader.value(spec, "outboundTrafficPolicy"), let policy = reader.mapping(policyNode, "spec.outboundTrafficPolicy") {
            if let modeNode = YAMLReader.value(policy, "mode"), let text = reader.string(modeNode, "spec.outboundTrafficPolicy.mode") {
                mode = OutboundTrafficPolicyMode(rawValue: text)
                if mode == nil { reader.error("spec.outboundTrafficPolicy.mode", at: modeNode, "must be ALLOW_ANY or REGISTRY_ONLY") }
            }
            if let proxyNode = YAMLReader.value(policy, "egressProxy"), let proxy = reader.mapping(proxyNode, "spec.outboundTrafficPolicy.egressProxy") {
                proxyHost = YAMLReader.value(proxy, "host").flatMap { reader.string($0, "spec.outboundTrafficPolicy.egressProxy.host") }?.lowercased()
                let subset = YAMLReader.value(proxy, "subset").flatMap { reader.string($0, "spec.outboundTrafficPolicy.egressProxy.subset") }
                let port = reader.portNumber(proxy, "port", "spec.outboundTrafficPolicy.egressProxy.port")
                if proxyHost == nil { reader.error("spec.outboundTrafficPolicy.egressProxy.host", at: proxyNode, "required") }
                if port == nil { reader.error("spec.outboundTrafficPolicy.egressProxy.port", at: proxyNode, "required: the proxy's port") }
                if let host = proxyHost { proxyDestination = RouteDestination(host: host, subset: subset, port: port, weight: 100) }
            }
            if proxyDestination != nil, mode == .registryOnly {
                reader.warning("spec.outboundTrafficPolicy.egressProxy", at: YAMLReader.value(policy, "egressProxy"),
                               "Istio applies egressProxy only with mode ALLOW_ANY (Sidecar reference); under REGISTRY_ONLY unregistered traffic is still blocked")
            }
        }
        return SidecarResource(
            id: id, workloadSelector: selector, egressHosts: hosts, outboundMode: mode, egressProxyHost: proxyHost, source: source,
            egress: listeners, egressProxy: proxyDestination)
    }
}
