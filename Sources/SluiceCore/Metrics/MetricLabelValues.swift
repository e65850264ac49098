/// Label values derived from what the proxy knows, with cardinality bounded by construction:
/// every value comes from configuration (registered hosts) or a small fixed set, never from a
/// client's Host, SNI or path.
public enum MetricLabelValues {
    /// Istio's value for a label it cannot fill.
    public static let unknown = "unknown"
    /// The value that replaces anything past a cardinality cap.
    public static let other = "other"

    /// `destination_service` for an Envoy cluster name.
    ///
    /// `outbound|80||aliyun.com` → `aliyun.com` (the registered host as written, so a wildcard
    /// entry stays `*.aliyun.com`); `PassthroughCluster` and `BlackHoleCluster` as they are;
    /// nil, empty, `-` or anything not shaped like a cluster → `unknown`.
    public static func destinationService(cluster: String?) -> String {
        guard let cluster, !cluster.isEmpty else { return unknown }
        if cluster == Decision.passthroughCluster || cluster == Decision.blackHoleCluster { return cluster }
        // Envoy's `direction|port|subset|host`: exactly four fields, a known direction, a
        // numeric port and a non-empty host. Scanned in place rather than split: this ran
        // once per request before ProxyMetrics memoized it, and `split` allocates an array.
        let utf8 = cluster.utf8
        guard let bar1 = utf8.firstIndex(of: UInt8(ascii: "|")) else { return unknown }
        let direction = utf8[..<bar1]
        guard direction.elementsEqual("outbound".utf8) || direction.elementsEqual("inbound".utf8) else { return unknown }
        let portStart = utf8.index(after: bar1)
        guard let bar2 = utf8[portStart...].firstIndex(of: UInt8(ascii: "|")) else { return unknown }
        let port = utf8[portStart..<bar2]
        guard !port.isEmpty, port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return unknown }
        guard let bar3 = utf8[utf8.index(after: bar2)...].firstIndex(of: UInt8(ascii: "|")) else { return unknown }
        let host = utf8[utf8.index(after: bar3)...]
        // A fifth field (another `|`) or an empty host is not a cluster name.
        guard !host.isEmpty, !host.contains(UInt8(ascii: "|")) else { return unknown }
        return String(Substring(host))
    }

    /// `response_code`: the status as decimal; anything outside 0…999 (no HTTP status is)
    /// becomes `other`, so a broken upstream cannot mint series.
    public static func responseCode(_ code: Int) -> String {
        (0...999).contains(code) ? String(code) : other
    }

    /// `response_flags`: Envoy's rendering (`-` when none).
    public static func responseFlags(_ flags: ResponseFlags) -> String {
        // Most records carry no flag: skip the renderer's buffer for them.
        flags.rawValue == 0 ? "-" : flags.envoyString
    }
}

/// Caps the number of distinct values one label may take: the first `limit` values pass,
/// later new ones become `other`. A defence in depth for `destination_service`, whose values
/// already come from configuration; a registry of more hosts than the cap still reports the
/// first ones faithfully and never grows the series count without bound.
public struct LabelValueCap: Sendable {
    /// How many distinct values pass (fixed values not counted).
    public let limit: Int
    /// Values that always pass and do not count against the limit.
    public let fixed: Set<String>
    private var seen: Set<String> = []

    /// Creates a cap; `fixed` values (the three fixed clusters, `unknown`) always pass.
    public init(limit: Int, fixed: Set<String> = []) {
        self.limit = max(0, limit)
        self.fixed = fixed
    }

    /// Distinct values admitted so far (fixed values not counted).
    public var count: Int { seen.count }

    /// `value` itself if it was seen before, is fixed, or fits under the limit; else `other`.
    public mutating func admit(_ value: String) -> String {
        if fixed.contains(value) || seen.contains(value) { return value }
        guard seen.count < limit else { return MetricLabelValues.other }
        seen.insert(value)
        return value
    }
}
