import Yams

/// Field readers the routing objects share: durations, string matches, percentages, ports.
extension YAMLReader {
    /// A protobuf Duration as Istio writes it: `5s`, `0.5s`, `100ms`, `1m`, `1h` (also `us`).
    mutating func duration(_ node: Node, _ field: String) -> Duration? {
        guard let text = string(node, field) else { return nil }
        guard let value = RoutingDurations.parse(text) else {
            error(field, at: node, "must be a duration such as 5s, 0.5s or 250ms, not \"\(text)\"")
            return nil
        }
        return value
    }

    /// A non-negative decimal number (`percentage.value`), at most `maximum`.
    mutating func double(_ node: Node, _ field: String, maximum: Double) -> Double? {
        guard let text = string(node, field) else { return nil }
        guard let value = Double(text.trimmingASCIIWhitespace()), value >= 0, value <= maximum else {
            error(field, at: node, "must be a number from 0 to \(Int(maximum)), not \"\(text)\"")
            return nil
        }
        return value
    }

    /// Istio's StringMatch: a mapping with exactly one of exact, prefix, regex.
    mutating func stringMatch(_ node: Node, _ field: String) -> StringMatch? {
        guard let mapping = mapping(node, field) else { return nil }
        checkKeys(mapping, allowed: ["exact", "prefix", "regex"], prefix: field, severity: .error)
        var found: [StringMatch] = []
        if let value = YAMLReader.value(mapping, "exact").flatMap({ string($0, field + ".exact") }) { found.append(.exact(value)) }
        if let value = YAMLReader.value(mapping, "prefix").flatMap({ string($0, field + ".prefix") }) { found.append(.prefix(value)) }
        if let valueNode = YAMLReader.value(mapping, "regex"), let value = string(valueNode, field + ".regex") {
            if let compiled = StringMatch.regex(value) {
                found.append(compiled)
            } else {
                error(field + ".regex", at: valueNode, "not a valid regular expression: \(value)")
            }
        }
        let present = ["exact", "prefix", "regex"].filter { YAMLReader.value(mapping, $0) != nil }.count
        guard present == 1 else {
            error(field, at: node, "needs exactly one of exact, prefix or regex")
            return nil
        }
        return found.first
    }

    /// `port: {number: N}` of a destination or listener; nil when absent.
    mutating func portNumber(_ mapping: Node.Mapping, _ key: String, _ field: String) -> Int? {
        guard let portNode = YAMLReader.value(mapping, key), let port = self.mapping(portNode, field) else { return nil }
        guard let numberNode = YAMLReader.value(port, "number") else {
            error(field + ".number", at: portNode, "required")
            return nil
        }
        return int(numberNode, field + ".number", in: 1...65535)
    }

    /// `workloadSelector: {labels: {...}}` (Sidecar) or `{matchLabels: {...}}` (DestinationRule).
    mutating func selectorLabels(_ spec: Node.Mapping, key: String, labelsKey: String, _ field: String) -> [String: String]? {
        guard let node = YAMLReader.value(spec, key), let mapping = mapping(node, field) else { return nil }
        guard let labels = YAMLReader.value(mapping, labelsKey) else { return [:] }
        return stringMap(labels, field + "." + labelsKey)
    }
}

/// Protobuf Durations.
public enum RoutingDurations {
    /// `5s`, `0.5s`, `100ms`, `20us`, `1m`, `1h`; nil for anything else.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingASCIIWhitespace()
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number >= 0, number.isFinite else { return nil }
            let nanos = (number * scale * 1e9).rounded()
            guard nanos < 1e18 else { return nil }
            return .nanoseconds(Int64(nanos))
        }
        return nil
    }

    /// The shortest of `1.5s`, `250ms`, `0s`, as Istio prints them.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if millis % 1000 == 0 { return "\(millis / 1000)s" }
        return "\(millis)ms"
    }
}
