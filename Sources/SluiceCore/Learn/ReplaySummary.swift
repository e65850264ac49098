/// What a configuration would do with logged traffic: `sluice replay`'s tally, so a reviewer
/// can test a registry change against yesterday's traffic before applying it.
///
/// Each logged request or connection is decided again by the configuration's `Policy` (the
/// data path's own decision stage) and compared with what the log says happened: let through
/// (allowed, passed through, or audited) or denied. Memory is bounded by the distinct
/// destinations, capped at `maxDestinations`.
public struct ReplaySummary: Sendable {
    /// Distinct destinations remembered per list; past it they are only counted.
    public static let maxDestinations = 10_000

    /// Lines decided, in all.
    public private(set) var decided = 0
    /// Would be allowed.
    public private(set) var allowed = 0
    /// Would be denied.
    public private(set) var denied = 0
    /// Went through in the log and would be denied now: the outage the change would cause.
    public private(set) var newlyDenied = 0
    /// Were denied in the log and would be allowed now.
    public private(set) var newlyAllowed = 0
    /// Lines that do not say enough to decide (opaque TCP without its destination).
    public private(set) var undecidable = 0
    /// Newly denied, by destination (`http aliyun.com:80`, `tcp 192.0.2.7:5432`).
    public private(set) var newlyDeniedByDestination: [String: Int] = [:]
    /// Newly denied lines whose destination was past the cap.
    public private(set) var newlyDeniedUnlisted = 0

    /// An empty tally.
    public init() {}

    /// Counts one logged connection and the decision on it (nil: undecidable).
    public mutating func add(_ logged: LoggedConnection, _ decision: Decision?) {
        guard let decision else {
            undecidable += 1
            return
        }
        decided += 1
        if decision.isDenied {
            denied += 1
            guard !logged.wasDenied else { return }
            newlyDenied += 1
            let key = Self.destination(logged)
            if newlyDeniedByDestination[key] != nil || newlyDeniedByDestination.count < Self.maxDestinations {
                newlyDeniedByDestination[key, default: 0] += 1
            } else {
                newlyDeniedUnlisted += 1
            }
        } else {
            allowed += 1
            if logged.wasDenied { newlyAllowed += 1 }
        }
    }

    /// `http aliyun.com:80`, `tls api.example.com:443`, `tcp 192.0.2.7:5432`, `connect db.example.com:5432`.
    public static func destination(_ logged: LoggedConnection) -> String {
        let port = logged.port
        switch logged.traffic {
        case .http(let host): return "http \(HostPort(host: host, port: port))"
        case .tls(let name): return "tls \(HostPort(host: name, port: port))"
        case .tunnel(let host): return "connect \(HostPort(host: host, port: port))"
        case .tcp: return "tcp " + (logged.destination.map { HostPort(address: $0, port: port).description } ?? "?:\(port)")
        }
    }

    /// The report: totals, then the newly denied destinations, most lines first (ties by
    /// name, so two runs print the same), at most `limit` of them.
    public func report(limit: Int = 50) -> [String] {
        var lines = [
            "decided: \(decided) (allowed \(allowed), denied \(denied))",
            "newly denied: \(newlyDenied) (let through in the log, denied by this configuration)",
            "newly allowed: \(newlyAllowed) (denied in the log, allowed by this configuration)",
        ]
        if undecidable > 0 { lines.append("undecidable: \(undecidable) (no original destination in the line)") }
        let ranked = newlyDeniedByDestination.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        if !ranked.isEmpty {
            lines.append("newly denied destinations (\(ranked.count)), by lines:")
            for (destination, count) in ranked.prefix(limit) { lines.append("  \(count)\t\(destination)") }
            if ranked.count > limit { lines.append("  … and \(ranked.count - limit) more") }
            if newlyDeniedUnlisted > 0 { lines.append("  … and \(newlyDeniedUnlisted) lines to destinations past the first \(Self.maxDestinations)") }
        }
        return lines
    }
}
