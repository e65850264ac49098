import Yams

extension AuthorizationPolicy {
    /// API versions accepted (security.istio.io).
    public static let supportedAPIVersions: Set<String> = ["security.istio.io/v1", "security.istio.io/v1beta1"]

    /// Decodes one resource; nil (with errors naming `path:line` and the field) if invalid. What
    /// Sluice cannot enforce (CUSTOM, JWT request principals, other `when` keys) is an error: a
    /// policy applied only in part would allow or deny what its author did not mean.
    static func decode(_ node: Node, path: String) -> (policy: AuthorizationPolicy?, diagnostics: [ConfigDiagnostic]) {
        let line = YAMLReader.line(of: node) ?? 1
        var reader = YAMLReader(path: path, resource: "AuthorizationPolicy", fallbackLine: line)
        guard let resource = reader.mapping(node, "") else { return (nil, reader.sortedDiagnostics) }
        var name = ""
        var namespace = "default"
        var dryRun = false
        if let metadataNode = YAMLReader.value(resource, "metadata"), let metadata = reader.mapping(metadataNode, "metadata") {
            if let n = YAMLReader.value(metadata, "name"), let text = reader.string(n, "metadata.name") { name = text }
            if let n = YAMLReader.value(metadata, "namespace"), let text = reader.string(n, "metadata.namespace"), !text.isEmpty {
                namespace = text
            }
            if let n = YAMLReader.value(metadata, "annotations"), let annotations = reader.stringMap(n, "metadata.annotations") {
                dryRun = annotations["istio.io/dry-run"]?.lowercased() == "true"
            }
        }
        reader.resource = "AuthorizationPolicy \(namespace)/\(name.isEmpty ? "(unnamed)" : name)"
        if name.isEmpty { reader.error("metadata.name", at: YAMLReader.value(resource, "metadata"), "required") }
        if let versionNode = YAMLReader.value(resource, "apiVersion"), let version = reader.string(versionNode, "apiVersion") {
            if !supportedAPIVersions.contains(version) {
                reader.error("apiVersion", at: versionNode, "unsupported apiVersion \"\(version)\"; expected security.istio.io/v1 or v1beta1")
            }
        } else {
            reader.error("apiVersion", at: nil, "required")
        }
        // `spec: {}` is valid: an ALLOW policy with no rules, which denies everything.
        let specNode = YAMLReader.value(resource, "spec")
        let spec = specNode.flatMap { reader.mapping($0, "spec") } ?? Node.Mapping([])
        reader.checkKeys(spec, allowed: ["selector", "action", "rules", "provider"], prefix: "spec")
        var selector: [String: String]?
        if let n = YAMLReader.value(spec, "selector"), let mapping = reader.mapping(n, "spec.selector") {
            reader.checkKeys(mapping, allowed: ["matchLabels"], prefix: "spec.selector")
            selector = YAMLReader.value(mapping, "matchLabels").flatMap { reader.stringMap($0, "spec.selector.matchLabels") } ?? [:]
        }
        var action = Action.allow
        if let n = YAMLReader.value(spec, "action"), let text = reader.string(n, "spec.action") {
            if let parsed = Action(rawValue: text) {
                action = parsed
            } else if text == "CUSTOM" {
                reader.error("spec.action", at: n, "CUSTOM (external authorization) is not supported by Sluice; the policy is not applied")
            } else {
                reader.error("spec.action", at: n, "must be ALLOW, DENY or AUDIT, not \"\(text)\"")
            }
        }
        var rules: [Rule] = []
        if let n = YAMLReader.value(spec, "rules"), let items = reader.sequence(n, "spec.rules") {
            for (index, item) in items.enumerated() {
                if let rule = decodeRule(item, "spec.rules[\(index)]", &reader) { rules.append(rule) }
            }
        }
        guard !reader.diagnostics.contains(where: \.isError) else { return (nil, reader.sortedDiagnostics) }
        let policy = AuthorizationPolicy(
            namespace: namespace, name: name, selector: selector, action: action, rules: rules, dryRun: dryRun,
            source: SourceLocation(path: path, line: line))
        return (policy, reader.sortedDiagnostics)
    }

    private static func decodeRule(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> Rule? {
        guard let mapping = reader.mapping(node, field) else { return nil }
        reader.checkKeys(mapping, allowed: ["from", "to", "when"], prefix: field)
        var rule = Rule()
        for (f, node) in wrapped(mapping, "from", inner: "source", field, &reader) {
            if let source = decodeSource(node, f, &reader) { rule.from.append(source) }
        }
        for (f, node) in wrapped(mapping, "to", inner: "operation", field, &reader) {
            if let operation = decodeOperation(node, f, &reader) { rule.to.append(operation) }
        }
        if let n = YAMLReader.value(mapping, "when"), let items = reader.sequence(n, field + ".when") {
            for (index, item) in items.enumerated() {
                if let condition = decodeCondition(item, "\(field).when[\(index)]", &reader) { rule.when.append(condition) }
            }
        }
        return rule
    }

    /// `from: [{source: …}]` and `to: [{operation: …}]`: each item's one inner node, with its field name.
    private static func wrapped(
        _ mapping: Node.Mapping, _ key: String, inner: String, _ field: String, _ reader: inout YAMLReader
    ) -> [(String, Node)] {
        guard let n = YAMLReader.value(mapping, key), let items = reader.sequence(n, "\(field).\(key)") else { return [] }
        var result: [(String, Node)] = []
        for (index, item) in items.enumerated() {
            let f = "\(field).\(key)[\(index)]"
            guard let m = reader.mapping(item, f) else { continue }
            reader.checkKeys(m, allowed: [inner], prefix: f)
            guard let node = YAMLReader.value(m, inner) else {
                reader.error("\(f).\(inner)", at: item, "required")
                continue
            }
            result.append(("\(f).\(inner)", node))
        }
        return result
    }

    private static func matches(_ mapping: Node.Mapping, _ key: String, _ field: String, _ reader: inout YAMLReader) -> [AuthorizationMatch]? {
        guard let node = YAMLReader.value(mapping, key) else { return nil }
        guard let list = reader.stringList(node, YAMLReader.join(field, key)) else { return nil }
        if list.isEmpty { reader.error(YAMLReader.join(field, key), at: node, "must not be empty (omit the field instead)") }
        return list.map(AuthorizationMatch.init)
    }

    private static func blocks(_ mapping: Node.Mapping, _ key: String, _ field: String, _ reader: inout YAMLReader) -> [CIDR]? {
        guard let node = YAMLReader.value(mapping, key), let list = reader.stringList(node, YAMLReader.join(field, key)) else { return nil }
        var result: [CIDR] = []
        for (index, text) in list.enumerated() {
            if let block = CIDR(text) {
                result.append(block)
            } else if let ip = IPAddress(text), let block = CIDR(address: ip, prefixLength: ip.isIPv4 ? 32 : 128) {
                result.append(block)
            } else {
                reader.error("\(YAMLReader.join(field, key))[\(index)]", at: node.sequence?[index] ?? node, "\"\(text)\" is not an IP address or CIDR")
            }
        }
        return result
    }

    private static func ports(_ mapping: Node.Mapping, _ key: String, _ field: String, _ reader: inout YAMLReader) -> [Int]? {
        guard let node = YAMLReader.value(mapping, key), let list = reader.stringList(node, YAMLReader.join(field, key)) else { return nil }
        var result: [Int] = []
        for (index, text) in list.enumerated() {
            if let port = Int(text), (0...65535).contains(port) {
                result.append(port)
            } else {
                reader.error("\(YAMLReader.join(field, key))[\(index)]", at: node.sequence?[index] ?? node, "\"\(text)\" is not a port number")
            }
        }
        return result
    }

    private static func decodeSource(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> Source? {
        guard let m = reader.mapping(node, field) else { return nil }
        let jwt: Set<String> = ["requestPrincipals", "notRequestPrincipals"]
        reader.checkKeys(
            m,
            allowed: jwt.union([
                "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
                "notRemoteIpBlocks",
            ]), prefix: field)
        for key in jwt.sorted() where YAMLReader.value(m, key) != nil {
            reader.error(YAMLReader.join(field, key), at: YAMLReader.value(m, key), "JWT request principals are not supported by Sluice")
        }
        var source = Source()
        source.principals = matches(m, "principals", field, &reader)
        source.notPrincipals = matches(m, "notPrincipals", field, &reader)
        source.namespaces = matches(m, "namespaces", field, &reader)
        source.notNamespaces = matches(m, "notNamespaces", field, &reader)
        source.ipBlocks = blocks(m, "ipBlocks", field, &reader)
        source.notIpBlocks = blocks(m, "notIpBlocks", field, &reader)
        source.remoteIpBlocks = blocks(m, "remoteIpBlocks", field, &reader)
        source.notRemoteIpBlocks = blocks(m, "notRemoteIpBlocks", field, &reader)
        return source
    }

    private static func decodeOperation(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> Operation? {
        guard let m = reader.mapping(node, field) else { return nil }
        reader.checkKeys(m, allowed: ["hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths"], prefix: field)
        var operation = Operation()
        operation.hosts = matches(m, "hosts", field, &reader)
        operation.notHosts = matches(m, "notHosts", field, &reader)
        operation.ports = ports(m, "ports", field, &reader)
        operation.notPorts = ports(m, "notPorts", field, &reader)
        operation.methods = matches(m, "methods", field, &reader)
        operation.notMethods = matches(m, "notMethods", field, &reader)
        operation.paths = matches(m, "paths", field, &reader)
        operation.notPaths = matches(m, "notPaths", field, &reader)
        return operation
    }

    private static func decodeCondition(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> Condition? {
        guard let m = reader.mapping(node, field) else { return nil }
        reader.checkKeys(m, allowed: ["key", "values", "notValues"], prefix: field)
        guard let keyNode = YAMLReader.value(m, "key"), let text = reader.string(keyNode, field + ".key") else {
            reader.error(field + ".key", at: node, "required")
            return nil
        }
        let key: Condition.Key
        switch text {
        case "source.principal": key = .sourcePrincipal
        case "source.namespace": key = .sourceNamespace
        case "source.ip": key = .sourceIP
        case "remote.ip": key = .remoteIP
        case "destination.port": key = .destinationPort
        case "connection.sni": key = .connectionSNI
        default:
            if text.hasPrefix("request.headers["), text.hasSuffix("]"), text.count > "request.headers[]".count {
                key = .requestHeader(String(text.dropFirst("request.headers[".count).dropLast()))
            } else {
                reader.error(field + ".key", at: keyNode,
                             "\"\(text)\" is not supported (request.headers[…], source.principal, source.namespace, source.ip, remote.ip, destination.port, connection.sni)")
                return nil
            }
        }
        let values = matches(m, "values", field, &reader)
        let notValues = matches(m, "notValues", field, &reader)
        if values == nil && notValues == nil {
            reader.error(field, at: node, "needs values or notValues")
        }
        return Condition(key: key, values: values, notValues: notValues)
    }
}
