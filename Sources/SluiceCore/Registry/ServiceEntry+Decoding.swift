import Yams

/// Decoding and validation of one ServiceEntry resource, following Istio's own validation
/// (`pkg/config/validation`) closely enough that a file `istioctl validate` accepts loads here,
/// and a file it rejects is rejected with the same field named.
extension ServiceEntry {
    /// The apiVersions under which Istio serves ServiceEntry.
    public static let supportedAPIVersions: [String] = [
        "networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3",
    ]

    private static let resourceKeys: Set<String> = ["apiVersion", "kind", "metadata", "spec", "status"]
    private static let specKeys: Set<String> = [
        "hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector",
        "exportTo", "subjectAltNames",
    ]
    private static let portKeys: Set<String> = ["number", "name", "protocol", "targetPort"]
    private static let endpointKeys: Set<String> = [
        "address", "ports", "labels", "network", "locality", "weight", "serviceAccount",
    ]

    /// Decodes one resource whose `kind` is ServiceEntry. Returns nil when it has errors; the
    /// diagnostics say why. `node` is the resource's mapping node (its line is the entry's line).
    static func decode(_ node: Node, path: String) -> (entry: ServiceEntry?, diagnostics: [ConfigDiagnostic]) {
        let line = YAMLReader.line(of: node) ?? 1
        var reader = YAMLReader(path: path, resource: "ServiceEntry", fallbackLine: line)
        guard let resource = reader.mapping(node, "") else { return (nil, reader.sortedDiagnostics) }

        // Name the resource first, so that every later diagnostic carries it.
        var name = ""
        var namespace = "default"
        if let metadataNode = YAMLReader.value(resource, "metadata"), let metadata = reader.mapping(metadataNode, "metadata") {
            if let nameNode = YAMLReader.value(metadata, "name"), let text = reader.string(nameNode, "metadata.name") {
                name = text
            }
            if let nsNode = YAMLReader.value(metadata, "namespace"), let text = reader.string(nsNode, "metadata.namespace"),
               !text.isEmpty {
                namespace = text
            }
        }
        reader.resource = name.isEmpty ? "ServiceEntry \(namespace)/(unnamed)" : "ServiceEntry \(namespace)/\(name)"
        if name.isEmpty {
            reader.error("metadata.name", at: YAMLReader.value(resource, "metadata"), "required")
        }
        if let versionNode = YAMLReader.value(resource, "apiVersion"), let version = reader.string(versionNode, "apiVersion") {
            if !supportedAPIVersions.contains(version) {
                reader.error("apiVersion", at: versionNode,
                             "unsupported apiVersion \"\(version)\"; expected one of \(supportedAPIVersions.joined(separator: ", "))")
            }
        } else {
            reader.error("apiVersion", at: nil, "required")
        }
        reader.checkKeys(resource, allowed: resourceKeys, prefix: "", severity: .warning)

        guard let specNode = YAMLReader.value(resource, "spec") else {
            reader.error("spec", at: nil, "required")
            return (nil, reader.sortedDiagnostics)
        }
        guard let spec = reader.mapping(specNode, "spec") else { return (nil, reader.sortedDiagnostics) }
        if let specLine = YAMLReader.line(of: specNode) { reader.fallbackLine = specLine }
        reader.checkKeys(spec, allowed: specKeys, prefix: "spec", severity: .warning)

        let location = decodeLocation(spec, &reader)
        let resolution = decodeResolution(spec, &reader)
        let hosts = decodeHosts(spec, &reader)
        let addresses = decodeAddresses(spec, resolution: resolution, &reader)
        let ports = decodePorts(spec, &reader)
        let endpoints = decodeEndpoints(spec, resolution: resolution, ports: ports, &reader)
        var exportTo: [String] = []
        if let exportNode = YAMLReader.value(spec, "exportTo"), let list = reader.stringList(exportNode, "spec.exportTo") {
            exportTo = list
            for (index, target) in list.enumerated() where !(target == "." || target == "*" || target == "~" || isDNSLabel(target)) {
                reader.error("spec.exportTo[\(index)]", at: exportNode.sequence?[index],
                             "\"\(target)\" is not \".\", \"*\" or a namespace name")
            }
        }
        var selectsWorkloads = false
        if let selector = YAMLReader.value(spec, "workloadSelector"), !selector.isNull {
            selectsWorkloads = true
            if !(YAMLReader.value(spec, "endpoints")?.sequence?.isEmpty ?? true) {
                reader.error("spec.workloadSelector", at: selector, "only one of workloadSelector or endpoints can be set")
            } else {
                reader.note("spec.workloadSelector", at: selector,
                            "a sidecar cannot discover the pods it selects: its hosts and ports are registered, "
                                + (resolution == .none ? "and traffic goes to the original destination"
                                    : "but with resolution \(resolution.rawValue) and no endpoints there is no upstream (503 UH)"))
            }
        }
        var subjectAltNames: [String] = []
        if let sanNode = YAMLReader.value(spec, "subjectAltNames"), let list = reader.stringList(sanNode, "spec.subjectAltNames") {
            subjectAltNames = list
        }
        if location == .meshInternal {
            reader.note("spec.location", at: YAMLReader.value(spec, "location"),
                        "MESH_INTERNAL is accepted; it changes mTLS and telemetry in Istio, and nothing in Sluice's decisions")
        }
        if YAMLReader.value(spec, "ports")?.sequence?.isEmpty ?? true, !reader.hasErrors {
            reader.warning("spec.ports", at: YAMLReader.value(spec, "ports"),
                           "no ports: Istio accepts this, and the entry registers no traffic")
        }

        // Cross-field rules, as Istio checks them after the fields themselves.
        if resolution == .static, !selectsWorkloads, YAMLReader.value(spec, "endpoints")?.sequence?.isEmpty ?? true {
            reader.error("spec.endpoints", at: YAMLReader.value(spec, "endpoints") ?? YAMLReader.value(spec, "resolution"),
                         "resolution STATIC requires endpoints with IP addresses")
        }
        if resolution == .dns || resolution == .dnsRoundRobin, endpoints.isEmpty {
            for (index, host) in hosts.enumerated() where host.hasPrefix("*.") {
                reader.warning("spec.hosts[\(index)]", at: YAMLReader.value(spec, "hosts")?.sequence?[index],
                               "wildcard host with resolution \(resolution.rawValue) and no endpoints: Istio rejects this; Sluice resolves each requested name")
            }
        }

        guard !reader.hasErrors else { return (nil, reader.sortedDiagnostics) }
        let entry = ServiceEntry(
            name: name, namespace: namespace, hosts: hosts, addresses: addresses, ports: ports,
            location: location, resolution: resolution, endpoints: endpoints, exportTo: exportTo,
            selectsWorkloads: selectsWorkloads, subjectAltNames: subjectAltNames,
            source: SourceLocation(path: path, line: line))
        return (entry, reader.sortedDiagnostics)
    }

    private static func decodeLocation(_ spec: Node.Mapping, _ reader: inout YAMLReader) -> Location {
        guard let node = YAMLReader.value(spec, "location"), let text = reader.string(node, "spec.location") else {
            return .meshExternal
        }
        guard let location = Location(rawValue: text) else {
            reader.error("spec.location", at: node, "must be MESH_EXTERNAL or MESH_INTERNAL, not \"\(text)\"")
            return .meshExternal
        }
        return location
    }

    private static func decodeResolution(_ spec: Node.Mapping, _ reader: inout YAMLReader) -> Resolution {
        guard let node = YAMLReader.value(spec, "resolution"), let text = reader.string(node, "spec.resolution") else {
            return .none
        }
        guard let resolution = Resolution(rawValue: text) else {
            reader.error("spec.resolution", at: node, "must be NONE, STATIC, DNS or DNS_ROUND_ROBIN, not \"\(text)\"")
            return .none
        }
        return resolution
    }

    private static func decodeHosts(_ spec: Node.Mapping, _ reader: inout YAMLReader) -> [String] {
        guard let node = YAMLReader.value(spec, "hosts"), let hosts = reader.stringList(node, "spec.hosts") else {
            if YAMLReader.value(spec, "hosts") == nil { reader.error("spec.hosts", at: nil, "at least one host is required") }
            return []
        }
        if hosts.isEmpty { reader.error("spec.hosts", at: node, "at least one host is required") }
        var seen: Set<String> = []
        for (index, host) in hosts.enumerated() {
            let item = node.sequence?[index]
            if let problem = hostProblem(host) {
                reader.error("spec.hosts[\(index)]", at: item, problem)
            } else if host.hasPrefix("*"), !host.hasPrefix("*.") {
                reader.warning("spec.hosts[\(index)]", at: item,
                               "partial wildcard \"\(host)\": Istio warns; it matches any name ending in \"\(host.dropFirst())\" with at least one more character")
                if !seen.insert(host).inserted { reader.warning("spec.hosts[\(index)]", at: item, "duplicate host \"\(host)\"") }
            } else if !seen.insert(host).inserted {
                reader.warning("spec.hosts[\(index)]", at: item, "duplicate host \"\(host)\"")
            }
        }
        return hosts
    }

    /// Why `host` is not a valid ServiceEntry host, or nil if it is.
    static func hostProblem(_ host: String) -> String? {
        if host.isEmpty { return "must not be empty" }
        if host == "*" { return "a bare \"*\" is not allowed in a ServiceEntry; name the domain, e.g. \"*.example.com\"" }
        if host != host.lowercased() { return "\"\(host)\" must be lowercase" }
        if host.utf8.count > 255 { return "\"\(host)\" is longer than 255 characters" }
        var name = Substring(host)
        if name.hasPrefix("*.") {
            name = name.dropFirst(2)
        } else if name.hasPrefix("*") {
            // A partial wildcard (`*x.example.com`): Istio accepts it with a warning.
            name = name.dropFirst()
            if name.first == "-" { name = name.dropFirst() }
        }
        // Byte tests, not `contains("*")`: with Foundation imported that resolves to
        // NSString's search, ~6k instructions a host and CoreFoundation's Unicode tables paged in.
        if name.utf8.contains(UInt8(ascii: "*")) { return "\"\(host)\": a wildcard must be the whole leftmost label, as in \"*.example.com\"" }
        guard isDNSName(name) else { return "\"\(host)\" is not a valid DNS name" }
        return nil
    }

    /// A DNS name: dot-separated labels of letters, digits and inner hyphens, 1–63 bytes each.
    static func isDNSName(_ name: Substring) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel($0) }
    }

    static func isDNSLabel(_ label: some StringProtocol) -> Bool {
        let bytes = Array(label.utf8)
        guard !bytes.isEmpty, bytes.count <= 63,
              bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
        }
    }

    private static func decodeAddresses(_ spec: Node.Mapping, resolution: Resolution, _ reader: inout YAMLReader) -> [CIDR] {
        guard let node = YAMLReader.value(spec, "addresses"), let texts = reader.stringList(node, "spec.addresses") else {
            return []
        }
        var result: [CIDR] = []
        for (index, text) in texts.enumerated() {
            let item = node.sequence?[index]
            guard let cidr = CIDR(text) else {
                reader.error("spec.addresses[\(index)]", at: item, "\"\(text)\" is not an IP address or CIDR")
                continue
            }
            if text.utf8.contains(UInt8(ascii: "/")), cidr.prefixLength < cidr.address.bitWidth,
               resolution == .dns || resolution == .dnsRoundRobin {
                reader.error("spec.addresses[\(index)]", at: item,
                             "CIDR addresses are allowed only with resolution NONE or STATIC")
            }
            result.append(cidr)
        }
        return result
    }

    private static func decodePorts(_ spec: Node.Mapping, _ reader: inout YAMLReader) -> [ServicePort] {
        guard let node = YAMLReader.value(spec, "ports"), !node.isNull else { return [] }
        guard let items = reader.sequence(node, "spec.ports") else { return [] }
        var result: [ServicePort] = []
        var numbers: [Int: Int] = [:]
        var names: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let field = "spec.ports[\(index)]"
            guard let port = reader.mapping(item, field) else { continue }
            reader.checkKeys(port, allowed: portKeys, prefix: field, severity: .warning)
            var number: Int?
            if let numberNode = YAMLReader.value(port, "number") {
                number = reader.int(numberNode, field + ".number", in: 1...65535)
                if let value = number, let first = numbers[value] {
                    reader.error(field + ".number", at: numberNode, "duplicate port number \(value) (also spec.ports[\(first)])")
                } else if let value = number {
                    numbers[value] = index
                }
            } else {
                reader.error(field + ".number", at: item, "required")
            }
            var name = ""
            if let nameNode = YAMLReader.value(port, "name"), let text = reader.string(nameNode, field + ".name") {
                name = text
                if !isDNSLabel(text) {
                    reader.error(field + ".name", at: nameNode, "\"\(text)\" is not a valid port name (letters, digits and '-')")
                } else if let first = names[text] {
                    reader.error(field + ".name", at: nameNode, "duplicate port name \"\(text)\" (also spec.ports[\(first)])")
                } else {
                    names[text] = index
                }
            } else {
                reader.error(field + ".name", at: item, "required")
            }
            var proto = PortProtocol.detected("")
            if let protocolNode = YAMLReader.value(port, "protocol"), let text = reader.string(protocolNode, field + ".protocol") {
                proto = PortProtocol(istioName: text)
                if case .detected(let name) = proto, !name.isEmpty {
                    reader.warning(field + ".protocol", at: protocolNode,
                                   "unrecognised protocol \"\(text)\" (Istio knows HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TLS, TCP, MONGO, MYSQL, REDIS, UDP); the protocol is detected per connection, as for a port without one")
                } else if case .other("UDP") = proto {
                    reader.note(field + ".protocol", at: protocolNode, "UDP: no TCP traffic matches this port")
                }
            }
            var targetPort: Int?
            if let targetNode = YAMLReader.value(port, "targetPort"), !targetNode.isNull {
                targetPort = reader.int(targetNode, field + ".targetPort", in: 1...65535)
            }
            if let number {
                result.append(ServicePort(number: number, name: name, protocol: proto, targetPort: targetPort))
            }
        }
        return result
    }

    private static func decodeEndpoints(
        _ spec: Node.Mapping, resolution: Resolution, ports: [ServicePort], _ reader: inout YAMLReader
    ) -> [WorkloadEndpoint] {
        guard let node = YAMLReader.value(spec, "endpoints"), let items = reader.sequence(node, "spec.endpoints") else {
            return []
        }
        if resolution == .none, !items.isEmpty {
            reader.error("spec.endpoints", at: node, "no endpoints may be given with resolution NONE")
        }
        if resolution == .dnsRoundRobin, items.count > 1 {
            reader.error("spec.endpoints", at: node, "resolution DNS_ROUND_ROBIN allows at most one endpoint")
        }
        let portNames = Set(ports.map(\.name))
        var result: [WorkloadEndpoint] = []
        for (index, item) in items.enumerated() {
            let field = "spec.endpoints[\(index)]"
            guard let endpoint = reader.mapping(item, field) else { continue }
            reader.checkKeys(endpoint, allowed: endpointKeys, prefix: field, severity: .warning)
            guard let addressNode = YAMLReader.value(endpoint, "address"),
                  let address = reader.string(addressNode, field + ".address"), !address.isEmpty else {
                reader.error(field + ".address", at: item, "required")
                continue
            }
            let isIP = IPAddress(address) != nil
            if address.hasPrefix("unix://") {
                reader.note(field + ".address", at: addressNode,
                            "a unix domain socket is on the client's host, not reachable from a pod's network: a sidecar ignores this endpoint")
            } else if resolution == .static, !isIP {
                reader.error(field + ".address", at: addressNode,
                             "\"\(address)\" must be an IP address with resolution STATIC")
            } else if !isIP, !isDNSName(Substring(address)) {
                reader.error(field + ".address", at: addressNode, "\"\(address)\" is not an IP address or DNS name")
            }
            var endpointPorts: [String: Int] = [:]
            if let portsNode = YAMLReader.value(endpoint, "ports"), let mapping = reader.mapping(portsNode, field + ".ports") {
                for (key, value) in mapping {
                    let portName = key.scalar?.string ?? ""
                    let portField = field + ".ports." + portName
                    if !portNames.contains(portName) {
                        reader.error(portField, at: key, "\"\(portName)\" is not the name of a port in spec.ports")
                    }
                    if let number = reader.int(value, portField, in: 1...65535) { endpointPorts[portName] = number }
                }
            }
            var labels: [String: String] = [:]
            if let labelsNode = YAMLReader.value(endpoint, "labels") {
                labels = reader.stringMap(labelsNode, field + ".labels") ?? [:]
            }
            var weight: Int?
            if let weightNode = YAMLReader.value(endpoint, "weight"), !weightNode.isNull {
                weight = reader.int(weightNode, field + ".weight", in: 0...Int(UInt32.max))
            }
            var network: String?
            if let networkNode = YAMLReader.value(endpoint, "network") { network = reader.string(networkNode, field + ".network") }
            var locality: String?
            if let localityNode = YAMLReader.value(endpoint, "locality") { locality = reader.string(localityNode, field + ".locality") }
            result.append(WorkloadEndpoint(
                address: address, ports: endpointPorts, labels: labels, weight: weight, network: network, locality: locality))
        }
        return result
    }
}
