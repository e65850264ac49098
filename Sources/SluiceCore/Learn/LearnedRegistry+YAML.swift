extension LearnedRegistry {
    /// The most folded hosts a wildcard entry's comment lists by name.
    static let listedFoldedHosts = 20

    /// The entries as a multi-document ServiceEntry YAML stream that `sluice check` loads:
    /// `header` lines as comments first, then one document per entry, each with a comment
    /// saying what was seen (how often, first and last `start_time`) and, for each port, the
    /// same on its `protocol` line, so a review diff shows counts next to what they justify.
    ///
    /// Names, hosts and addresses are double-quoted: `*` starts a YAML alias and a host such
    /// as `1.5` would read as a number; everything in them is `[a-z0-9.*:/-]`, so nothing
    /// needs escaping.
    public func yaml(header: [String] = []) -> String {
        var out = ""
        // A header line is the caller's text (file names): no control character may end the
        // comment and start YAML of its own.
        for line in header { out += "# " + String(line.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) }) + "\n" }
        for entry in entries {
            out += "---\n"
            out += Self.summaryComment(entry)
            out += "apiVersion: networking.istio.io/v1\n"
            out += "kind: ServiceEntry\n"
            out += "metadata:\n"
            out += "  name: \"\(entry.name)\"\n"
            out += "spec:\n"
            out += "  hosts:\n"
            for host in entry.hosts { out += "  - \"\(host)\"\n" }
            if !entry.addresses.isEmpty {
                out += "  addresses:\n"
                for address in entry.addresses { out += "  - \"\(address)\"\n" }
            }
            out += "  location: MESH_EXTERNAL\n"
            out += "  resolution: \(entry.resolution.rawValue)\n"
            out += "  ports:\n"
            for port in entry.ports {
                out += "  - number: \(port.number)\n"
                out += "    name: \(port.name)\n"
                out += "    protocol: \(port.protocol)  # \(Self.describe(port.usage))\n"
            }
        }
        return out
    }

    static func summaryComment(_ entry: Entry) -> String {
        var total = ObservedTraffic.Usage()
        for port in entry.ports { total.add(port.usage) }
        let what = entry.addresses.isEmpty ? entry.hosts.joined(separator: ", ") : entry.addresses.map(\.address.description).joined(separator: ", ")
        var out = "# \(what): \(describe(total))\n"
        if !entry.foldedHosts.isEmpty {
            // One host a line, so a review diff shows which hosts came and went.
            out += "# stands for \(entry.foldedHosts.count) hosts seen:\n"
            for host in entry.foldedHosts.prefix(listedFoldedHosts) { out += "#   \(host)\n" }
            if entry.foldedHosts.count > listedFoldedHosts {
                out += "#   and \(entry.foldedHosts.count - listedFoldedHosts) more\n"
            }
        }
        return out
    }

    /// `12 seen (2 denied), 2026-12-01T04:00:00.000Z to 2026-12-01T05:00:00.000Z`.
    static func describe(_ usage: ObservedTraffic.Usage) -> String {
        var text = "\(usage.count) seen"
        if usage.denied > 0 { text += " (\(usage.denied) denied)" }
        if let first = usage.firstSeen, let last = usage.lastSeen {
            text += ", \(RFC3339.string(epochMilliseconds: first)) to \(RFC3339.string(epochMilliseconds: last))"
        }
        return text
    }
}
