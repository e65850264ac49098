import Yams

/// Decoding and validation of Gateway, VirtualService, DestinationRule and Sidecar resources:
/// required fields and types as Istio's validation checks them, every diagnostic with
/// `path:line`, the resource and the field. An invalid object is left out on its own.
enum RoutingObjectDecoder {
    /// The kinds decoded here.
    static let kinds: Set<String> = ["Gateway", "VirtualService", "DestinationRule", "Sidecar"]

    /// Decodes one resource of a kind in `kinds` into `objects`; returns its diagnostics and
    /// whether it was rejected.
    static func decode(
        kind: String, _ node: Node, path: String, into objects: inout RoutingObjects
    ) -> (diagnostics: [ConfigDiagnostic], rejected: Bool) {
        let line = YAMLReader.line(of: node) ?? 1
        var reader = YAMLReader(path: path, resource: kind, fallbackLine: line)
        guard let resource = reader.mapping(node, "") else { return (reader.sortedDiagnostics, true) }
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
            if !ServiceEntry.supportedAPIVersions.contains(version) {
                reader.error("apiVersion", at: versionNode,
                             "unsupported apiVersion \"\(version)\"; expected one of \(ServiceEntry.supportedAPIVersions.joined(separator: ", "))")
            }
        } else {
            reader.error("apiVersion", at: nil, "required")
        }
        guard let specNode = YAMLReader.value(resource, "spec"), let spec = reader.mapping(specNode, "spec") else {
            if YAMLReader.value(resource, "spec") == nil { reader.error("spec", at: nil, "required") }
            return (reader.sortedDiagnostics, true)
        }
        if let specLine = YAMLReader.line(of: specNode) { reader.fallbackLine = specLine }
        let source = SourceLocation(path: path, line: line)
        var decoded = RoutingObjects()
        switch kind {
        case "Gateway": decodeGateway(spec, id: id, source: source, &reader).map { decoded.gateways.append($0) }
        case "VirtualService": decodeVirtualService(spec, id: id, source: source, &reader).map { decoded.virtualServices.append($0) }
        case "DestinationRule": decodeDestinationRule(spec, id: id, source: source, &reader).map { decoded.destinationRules.append($0) }
        default: decodeSidecar(spec, id: id, source: source, &reader).map { decoded.sidecars.append($0) }
        }
        guard !reader.hasErrors else { return (reader.sortedDiagnostics, true) }
        reader.note(nil, at: node, "loaded and checked; the data path does not apply \(kind) routing yet (the egressGateway: block does)")
        objects.append(decoded)
        return (reader.sortedDiagnostics, false)
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
            if let tlsNode = YAMLReader.value(server, "tls"), let tls = reader.mapping(tlsNode, field + ".tls") {
                tlsMode = YAMLReader.value(tls, "mode").flatMap { reader.string($0, field + ".tls.mode") }
            }
            if (proto == "HTTPS" || proto == "TLS") && tlsMode == nil {
                reader.error(field + ".tls", at: item, "a \(proto) server needs tls.mode (PASSTHROUGH for egress passthrough)")
            }
            if let number { servers.append(.init(port: number, portName: portName, protocol: proto, hosts: hosts, tlsMode: tlsMode)) }
        }
        return IstioGateway(id: id, selector: selector, servers: servers, source: source)
    }

    // MARK: VirtualService

    private static let routeFieldsApplied: Set<String> = ["name", "match", "route"]

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

    private static func decodeRoute(
        _ route: Node.Mapping, kind: VirtualServiceRoute.Kind, field: String, at node: Node, _ reader: inout YAMLReader
    ) -> VirtualServiceRoute? {
        let name = YAMLReader.value(route, "name").flatMap { reader.string($0, field + ".name") }
        var ports: [Int] = []
        var gateways: [String] = []
        var sniHosts: [String] = []
        if let matchNode = YAMLReader.value(route, "match"), let matches = reader.sequence(matchNode, field + ".match") {
            for (index, matchItem) in matches.enumerated() {
                let matchField = "\(field).match[\(index)]"
                guard let match = reader.mapping(matchItem, matchField) else { continue }
                if let portNode = YAMLReader.value(match, "port"), let port = reader.int(portNode, matchField + ".port", in: 1...65535) {
                    ports.append(port)
                }
                gateways += YAMLReader.value(match, "gateways").flatMap { reader.stringList($0, matchField + ".gateways") } ?? []
                sniHosts += YAMLReader.value(match, "sniHosts").flatMap { reader.stringList($0, matchField + ".sniHosts") } ?? []
                if kind == .tls, YAMLReader.value(match, "sniHosts") == nil {
                    reader.error(matchField + ".sniHosts", at: matchItem, "a tls match needs sniHosts")
                }
            }
        } else if kind == .tls {
            reader.error(field + ".match", at: node, "a tls route needs a match with sniHosts")
        }
        var destinations: [RouteDestination] = []
        let hasRedirect = YAMLReader.value(route, "redirect") != nil || YAMLReader.value(route, "directResponse") != nil
        if let routeNode = YAMLReader.value(route, "route"), let items = reader.sequence(routeNode, field + ".route") {
            for (index, item) in items.enumerated() {
                let destinationField = "\(field).route[\(index)]"
                guard let weighted = reader.mapping(item, destinationField) else { continue }
                guard let destinationNode = YAMLReader.value(weighted, "destination"),
                      let destination = reader.mapping(destinationNode, destinationField + ".destination"),
                      let hostNode = YAMLReader.value(destination, "host"),
                      let host = reader.string(hostNode, destinationField + ".destination.host"), !host.isEmpty
                else {
                    reader.error(destinationField + ".destination.host", at: item, "required")
                    continue
                }
                let subset = YAMLReader.value(destination, "subset").flatMap { reader.string($0, destinationField + ".destination.subset") }
                var port: Int?
                if let portNode = YAMLReader.value(destination, "port"), let portMapping = reader.mapping(portNode, destinationField + ".destination.port"),
                   let numberNode = YAMLReader.value(portMapping, "number") {
                    port = reader.int(numberNode, destinationField + ".destination.port.number", in: 1...65535)
                }
                let weight = YAMLReader.value(weighted, "weight").flatMap { reader.int($0, destinationField + ".weight", in: 0...100) } ?? 0
                destinations.append(RouteDestination(host: host.lowercased(), subset: subset, port: port, weight: weight))
            }
        } else if !(kind == .http && hasRedirect) {
            reader.error(field + ".route", at: node, "at least one destination is required")
        }
        let weights = destinations.map(\.weight)
        if destinations.count > 1, weights.contains(where: { $0 > 0 }), weights.reduce(0, +) != 100 {
            reader.warning(field + ".route", at: YAMLReader.value(route, "route"), "weights add up to \(weights.reduce(0, +)), not 100")
        }
        let unapplied = route.compactMap { key, _ -> String? in
            guard let name = key.scalar?.string, !routeFieldsApplied.contains(name) else { return nil }
            return name
        }
        return VirtualServiceRoute(
            kind: kind, name: name, matchPorts: ports, matchGateways: gateways, sniHosts: sniHosts,
            destinations: destinations, unappliedFields: unapplied)
    }

    // MARK: DestinationRule

    private static func decodeDestinationRule(_ spec: Node.Mapping, id: RoutingObjectID, source: SourceLocation, _ reader: inout YAMLReader) -> DestinationRule? {
        reader.checkKeys(spec, allowed: ["host", "subsets", "trafficPolicy", "exportTo", "workloadSelector"], prefix: "spec", severity: .warning)
        guard let hostNode = YAMLReader.value(spec, "host"), let host = reader.string(hostNode, "spec.host"), !host.isEmpty else {
            reader.error("spec.host", at: YAMLReader.value(spec, "host"), "required")
            return nil
        }
        var subsets: [String] = []
        if let subsetsNode = YAMLReader.value(spec, "subsets"), let items = reader.sequence(subsetsNode, "spec.subsets") {
            for (index, item) in items.enumerated() {
                let field = "spec.subsets[\(index)]"
                guard let subset = reader.mapping(item, field) else { continue }
                guard let nameNode = YAMLReader.value(subset, "name"), let name = reader.string(nameNode, field + ".name"), !name.isEmpty else {
                    reader.error(field + ".name", at: item, "required")
                    continue
                }
                if subsets.contains(name) { reader.error(field + ".name", at: nameNode, "duplicate subset \"\(name)\"") }
                subsets.append(name)
            }
        }
        var tlsMode: String?
        if let policyNode = YAMLReader.value(spec, "trafficPolicy"), let policy = reader.mapping(policyNode, "spec.trafficPolicy"),
           let tlsNode = YAMLReader.value(policy, "tls"), let tls = reader.mapping(tlsNode, "spec.trafficPolicy.tls") {
            tlsMode = YAMLReader.value(tls, "mode").flatMap { reader.string($0, "spec.trafficPolicy.tls.mode") }
            if let mode = tlsMode, !["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"].contains(mode) {
                reader.error("spec.trafficPolicy.tls.mode", at: YAMLReader.value(tls, "mode"), "must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL")
            }
        }
        let exportTo = YAMLReader.value(spec, "exportTo").flatMap { reader.stringList($0, "spec.exportTo") } ?? []
        return DestinationRule(id: id, host: host.lowercased(), subsets: subsets, tlsMode: tlsMode, exportTo: exportTo, source: source)
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
            }
        }
        var mode: OutboundTrafficPolicyMode?
        var proxyHost: String?
        if let policyNode = YAMLReader.value(spec, "outboundTrafficPolicy"), let policy = reader.mapping(policyNode, "spec.outboundTrafficPolicy") {
            if let modeNode = YAMLReader.value(policy, "mode"), let text = reader.string(modeNode, "spec.outboundTrafficPolicy.mode") {
                mode = OutboundTrafficPolicyMode(rawValue: text)
                if mode == nil { reader.error("spec.outboundTrafficPolicy.mode", at: modeNode, "must be ALLOW_ANY or REGISTRY_ONLY") }
            }
            if let proxyNode = YAMLReader.value(policy, "egressProxy"), let proxy = reader.mapping(proxyNode, "spec.outboundTrafficPolicy.egressProxy") {
                proxyHost = YAMLReader.value(proxy, "host").flatMap { reader.string($0, "spec.outboundTrafficPolicy.egressProxy.host") }
            }
        }
        return SidecarResource(id: id, workloadSelector: selector, egressHosts: hosts, outboundMode: mode, egressProxyHost: proxyHost, source: source)
    }
}
