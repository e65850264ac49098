import Yams

/// The http, tls and tcp routes of a VirtualService: matches, destinations and the http
/// behaviours, field by field as the VirtualService reference defines them.
extension RoutingObjectDecoder {
    /// Route fields modelled; any other is noted as not applied.
    private static let httpRouteFields: Set<String> = [
        "name", "match", "route", "timeout", "retries", "headers", "rewrite", "redirect", "fault",
    ]
    private static let l4RouteFields: Set<String> = ["match", "route"]

    static func decodeRoute(
        _ route: Node.Mapping, kind: VirtualServiceRoute.Kind, field: String, at node: Node, _ reader: inout YAMLReader
    ) -> VirtualServiceRoute? {
        let name = YAMLReader.value(route, "name").flatMap { reader.string($0, field + ".name") }
        var parsed = VirtualServiceRoute(
            kind: kind, name: name, matchPorts: [], matchGateways: [], sniHosts: [], destinations: [], unappliedFields: [])
        if let matchNode = YAMLReader.value(route, "match"), let matches = reader.sequence(matchNode, field + ".match") {
            for (index, matchItem) in matches.enumerated() {
                let matchField = "\(field).match[\(index)]"
                guard let match = reader.mapping(matchItem, matchField) else { continue }
                if kind == .http {
                    let http = decodeHTTPMatch(match, matchField, &reader)
                    parsed.httpMatches.append(http)
                    if let port = http.port { parsed.matchPorts.append(port) }
                    parsed.matchGateways += http.gateways
                } else {
                    let l4 = decodeL4Match(match, kind: kind, matchField, at: matchItem, &reader)
                    parsed.l4Matches.append(l4)
                    if let port = l4.port { parsed.matchPorts.append(port) }
                    parsed.matchGateways += l4.gateways
                    parsed.sniHosts += l4.sniHosts
                }
            }
        } else if kind == .tls {
            reader.error(field + ".match", at: node, "a tls route needs a match with sniHosts")
        }
        let hasRedirect = YAMLReader.value(route, "redirect") != nil || YAMLReader.value(route, "directResponse") != nil
        if let routeNode = YAMLReader.value(route, "route"), let items = reader.sequence(routeNode, field + ".route") {
            for (index, item) in items.enumerated() {
                if let destination = decodeDestination(item, "\(field).route[\(index)]", &reader) { parsed.destinations.append(destination) }
            }
            if items.isEmpty { reader.error(field + ".route", at: routeNode, "at least one destination is required") }
        } else if !(kind == .http && hasRedirect) {
            reader.error(field + ".route", at: node, "at least one destination is required")
        }
        if kind == .http, YAMLReader.value(route, "route") != nil, YAMLReader.value(route, "redirect") != nil {
            reader.error(field + ".redirect", at: YAMLReader.value(route, "redirect"), "a route has either route or redirect, not both")
        }
        let weights = parsed.destinations.map(\.weight)
        if parsed.destinations.count > 1, weights.contains(where: { $0 > 0 }), weights.reduce(0, +) != 100 {
            reader.warning(field + ".route", at: YAMLReader.value(route, "route"), "weights add up to \(weights.reduce(0, +)), not 100")
        }
        if kind == .http { parsed.behaviour = decodeBehaviour(route, field, &reader) }
        let modelled = kind == .http ? httpRouteFields : l4RouteFields
        parsed.unappliedFields = route.compactMap { key, _ -> String? in
            guard let name = key.scalar?.string, !modelled.contains(name) else { return nil }
            return name
        }
        for unapplied in parsed.unappliedFields {
            reader.note(field + "." + unapplied, at: YAMLReader.value(route, unapplied), "not applied by Sluice")
        }
        return parsed
    }

    static func decodeDestination(_ item: Node, _ field: String, _ reader: inout YAMLReader) -> RouteDestination? {
        guard let weighted = reader.mapping(item, field) else { return nil }
        reader.checkKeys(weighted, allowed: ["destination", "weight", "headers"], prefix: field, severity: .warning)
        guard let destinationNode = YAMLReader.value(weighted, "destination"),
              let destination = reader.mapping(destinationNode, field + ".destination"),
              let hostNode = YAMLReader.value(destination, "host"),
              let host = reader.string(hostNode, field + ".destination.host"), !host.isEmpty
        else {
            reader.error(field + ".destination.host", at: item, "required")
            return nil
        }
        let subset = YAMLReader.value(destination, "subset").flatMap { reader.string($0, field + ".destination.subset") }
        let port = reader.portNumber(destination, "port", field + ".destination.port")
        let weight = YAMLReader.value(weighted, "weight").flatMap { reader.int($0, field + ".weight", in: 0...100) } ?? 0
        return RouteDestination(host: host.lowercased(), subset: subset, port: port, weight: weight)
    }

    private static func decodeHTTPMatch(_ match: Node.Mapping, _ field: String, _ reader: inout YAMLReader) -> HTTPMatchRequest {
        reader.checkKeys(match, allowed: [
            "name", "uri", "method", "authority", "headers", "port", "sourceLabels", "gateways", "sourceNamespace",
            "scheme", "queryParams", "ignoreUriCase", "withoutHeaders", "statPrefix",
        ], prefix: field, severity: .warning)
        for unapplied in ["scheme", "queryParams", "ignoreUriCase", "withoutHeaders"] where YAMLReader.value(match, unapplied) != nil {
            reader.note(field + "." + unapplied, at: YAMLReader.value(match, unapplied), "not applied by Sluice: this match condition is ignored")
        }
        var result = HTTPMatchRequest()
        result.name = YAMLReader.value(match, "name").flatMap { reader.string($0, field + ".name") }
        result.uri = YAMLReader.value(match, "uri").flatMap { reader.stringMatch($0, field + ".uri") }
        result.method = YAMLReader.value(match, "method").flatMap { reader.stringMatch($0, field + ".method") }
        result.authority = YAMLReader.value(match, "authority").flatMap { reader.stringMatch($0, field + ".authority") }
        if let headersNode = YAMLReader.value(match, "headers"), let headers = reader.mapping(headersNode, field + ".headers") {
            for (key, value) in headers {
                guard let name = key.scalar?.string else { continue }
                if let parsed = reader.stringMatch(value, field + ".headers." + name) { result.headers[name.lowercased()] = parsed }
            }
        }
        result.port = YAMLReader.value(match, "port").flatMap { reader.int($0, field + ".port", in: 1...65535) }
        result.sourceLabels = YAMLReader.value(match, "sourceLabels").flatMap { reader.stringMap($0, field + ".sourceLabels") } ?? [:]
        result.gateways = YAMLReader.value(match, "gateways").flatMap { reader.stringList($0, field + ".gateways") } ?? []
        result.sourceNamespace = YAMLReader.value(match, "sourceNamespace").flatMap { reader.string($0, field + ".sourceNamespace") }
        return result
    }

    private static func decodeL4Match(
        _ match: Node.Mapping, kind: VirtualServiceRoute.Kind, _ field: String, at node: Node, _ reader: inout YAMLReader
    ) -> L4Match {
        let allowed: Set<String> = kind == .tls
            ? ["port", "sniHosts", "destinationSubnets", "gateways", "sourceLabels", "sourceNamespace"]
            : ["port", "destinationSubnets", "gateways", "sourceLabels", "sourceNamespace", "sourceSubnet"]
        reader.checkKeys(match, allowed: allowed, prefix: field, severity: .warning)
        var result = L4Match()
        result.port = YAMLReader.value(match, "port").flatMap { reader.int($0, field + ".port", in: 1...65535) }
        result.sniHosts = (YAMLReader.value(match, "sniHosts").flatMap { reader.stringList($0, field + ".sniHosts") } ?? []).map { $0.lowercased() }
        if kind == .tls, result.sniHosts.isEmpty { reader.error(field + ".sniHosts", at: node, "a tls match needs sniHosts") }
        if let subnetsNode = YAMLReader.value(match, "destinationSubnets"),
           let subnets = reader.stringList(subnetsNode, field + ".destinationSubnets") {
            for (index, text) in subnets.enumerated() {
                if let cidr = CIDR(text) {
                    result.destinationSubnets.append(cidr)
                } else {
                    reader.error("\(field).destinationSubnets[\(index)]", at: subnetsNode, "not an IP address or CIDR: \(text)")
                }
            }
        }
        result.gateways = YAMLReader.value(match, "gateways").flatMap { reader.stringList($0, field + ".gateways") } ?? []
        result.sourceLabels = YAMLReader.value(match, "sourceLabels").flatMap { reader.stringMap($0, field + ".sourceLabels") } ?? [:]
        result.sourceNamespace = YAMLReader.value(match, "sourceNamespace").flatMap { reader.string($0, field + ".sourceNamespace") }
        return result
    }

    private static func decodeBehaviour(_ route: Node.Mapping, _ field: String, _ reader: inout YAMLReader) -> HTTPRouteBehaviour {
        var behaviour = HTTPRouteBehaviour()
        behaviour.timeout = YAMLReader.value(route, "timeout").flatMap { reader.duration($0, field + ".timeout") }
        if let retriesNode = YAMLReader.value(route, "retries"), let retries = reader.mapping(retriesNode, field + ".retries") {
            reader.checkKeys(retries, allowed: ["attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities"], prefix: field + ".retries", severity: .warning)
            let attempts = YAMLReader.value(retries, "attempts").flatMap { reader.int($0, field + ".retries.attempts", in: 0...100) } ?? 2
            let perTry = YAMLReader.value(retries, "perTryTimeout").flatMap { reader.duration($0, field + ".retries.perTryTimeout") }
            let retryText: String? = YAMLReader.value(retries, "retryOn").flatMap { reader.string($0, field + ".retries.retryOn") }
            let retryOn: [String]? = retryText.map { text in
                text.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
            }
            behaviour.retries = RetryPolicy(attempts: attempts, perTryTimeout: perTry, retryOn: retryOn ?? RetryPolicy.istioDefault.retryOn)
        }
        if let headersNode = YAMLReader.value(route, "headers"), let headers = reader.mapping(headersNode, field + ".headers") {
            reader.checkKeys(headers, allowed: ["request", "response"], prefix: field + ".headers", severity: .warning)
            if let node = YAMLReader.value(headers, "request") { behaviour.requestHeaders = decodeHeaderOperations(node, field + ".headers.request", &reader) }
            if let node = YAMLReader.value(headers, "response") { behaviour.responseHeaders = decodeHeaderOperations(node, field + ".headers.response", &reader) }
        }
        if let rewriteNode = YAMLReader.value(route, "rewrite"), let rewrite = reader.mapping(rewriteNode, field + ".rewrite") {
            reader.checkKeys(rewrite, allowed: ["uri", "authority", "uriRegexRewrite"], prefix: field + ".rewrite", severity: .warning)
            behaviour.rewrite = HTTPRewrite(
                uri: YAMLReader.value(rewrite, "uri").flatMap { reader.string($0, field + ".rewrite.uri") },
                authority: YAMLReader.value(rewrite, "authority").flatMap { reader.string($0, field + ".rewrite.authority") })
        }
        if let redirectNode = YAMLReader.value(route, "redirect"), let redirect = reader.mapping(redirectNode, field + ".redirect") {
            reader.checkKeys(redirect, allowed: ["uri", "authority", "port", "derivePort", "scheme", "redirectCode"], prefix: field + ".redirect", severity: .warning)
            var parsed = HTTPRedirect()
            parsed.uri = YAMLReader.value(redirect, "uri").flatMap { reader.string($0, field + ".redirect.uri") }
            parsed.authority = YAMLReader.value(redirect, "authority").flatMap { reader.string($0, field + ".redirect.authority") }
            parsed.port = YAMLReader.value(redirect, "port").flatMap { reader.int($0, field + ".redirect.port", in: 1...65535) }
            parsed.scheme = YAMLReader.value(redirect, "scheme").flatMap { reader.string($0, field + ".redirect.scheme") }
            if let codeNode = YAMLReader.value(redirect, "redirectCode"), let code = reader.int(codeNode, field + ".redirect.redirectCode") {
                if [301, 302, 303, 307, 308].contains(code) {
                    parsed.code = code
                } else {
                    reader.error(field + ".redirect.redirectCode", at: codeNode, "must be 301, 302, 303, 307 or 308, not \(code)")
                }
            }
            behaviour.redirect = parsed
        }
        if let faultNode = YAMLReader.value(route, "fault"), let fault = reader.mapping(faultNode, field + ".fault") {
            reader.checkKeys(fault, allowed: ["delay", "abort"], prefix: field + ".fault", severity: .warning)
            var parsed = HTTPFault()
            if let delayNode = YAMLReader.value(fault, "delay"), let delay = reader.mapping(delayNode, field + ".fault.delay") {
                parsed.delayDuration = YAMLReader.value(delay, "fixedDelay").flatMap { reader.duration($0, field + ".fault.delay.fixedDelay") }
                if parsed.delayDuration == nil { reader.error(field + ".fault.delay.fixedDelay", at: delayNode, "required") }
                parsed.delayPercent = percentage(delay, field + ".fault.delay", &reader)
            }
            if let abortNode = YAMLReader.value(fault, "abort"), let abort = reader.mapping(abortNode, field + ".fault.abort") {
                parsed.abortStatus = YAMLReader.value(abort, "httpStatus").flatMap { reader.int($0, field + ".fault.abort.httpStatus", in: 200...599) }
                if parsed.abortStatus == nil { reader.error(field + ".fault.abort.httpStatus", at: abortNode, "required (Sluice does not model grpcStatus)") }
                parsed.abortPercent = percentage(abort, field + ".fault.abort", &reader)
            }
            behaviour.fault = parsed
        }
        return behaviour
    }

    private static func percentage(_ mapping: Node.Mapping, _ field: String, _ reader: inout YAMLReader) -> Double {
        guard let node = YAMLReader.value(mapping, "percentage"), let percentage = reader.mapping(node, field + ".percentage"),
              let value = YAMLReader.value(percentage, "value")
        else { return 100 }
        return reader.double(value, field + ".percentage.value", maximum: 100) ?? 100
    }

    private static func decodeHeaderOperations(_ node: Node, _ field: String, _ reader: inout YAMLReader) -> HeaderOperations {
        guard let mapping = reader.mapping(node, field) else { return HeaderOperations() }
        reader.checkKeys(mapping, allowed: ["set", "add", "remove"], prefix: field, severity: .warning)
        func pairs(_ key: String) -> [HeaderOperations.Pair] {
            guard let node = YAMLReader.value(mapping, key), let map = reader.mapping(node, field + "." + key) else { return [] }
            return map.compactMap { name, value in
                guard let name = name.scalar?.string, let text = value.scalar?.string else { return nil }
                return HeaderOperations.Pair(name: name.lowercased(), value: text)
            }
        }
        let remove = YAMLReader.value(mapping, "remove").flatMap { reader.stringList($0, field + ".remove") } ?? []
        return HeaderOperations(set: pairs("set"), add: pairs("add"), remove: remove.map { $0.lowercased() })
    }
}
