/// `sluice learn --fold N`: host names that share a parent domain with more than N other
/// distinct names are written as one `*.parent` entry.
///
/// Each host folds under the most specific parent that has more than N distinct hosts below
/// it, so `a.cdn.example.com`… fold into `*.cdn.example.com` even when `example.com` as a
/// whole qualifies too; a wildcard that another one covers is dropped. A parent is never a top-level
/// domain (`*.com`) nor one of the common multi-label public suffixes (`*.co.uk`):
/// a wildcard there would let a pod reach anyone's domain. A parent itself (`cdn.example.com`)
/// is not matched by its wildcard (Istio's `*.` needs a label), so it stays its own entry and
/// does not count towards folding a level higher.
public enum HostFolding {
    /// Registrable-domain boundaries that are more than one label: folding stops above them.
    /// Not the whole Public Suffix List (no dependency carries it); the output is reviewed.
    public static let publicSuffixes: Set<String> = [
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "net.uk",
        "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.kr", "or.kr", "co.nz", "org.nz", "co.in", "net.in", "org.in", "co.za",
        "com.br", "com.mx", "com.tw", "com.hk", "com.sg", "com.tr", "com.ar",
    ]

    /// For each host that folds, the wildcard it folds into (`a.cdn.example.com` →
    /// `*.cdn.example.com`); hosts that stay as they are have no key.
    public static func wildcards(for hosts: Set<String>, threshold: Int) -> [String: String] {
        func countBelow(_ hosts: some Sequence<String>) -> [Substring: Int] {
            var below: [Substring: Int] = [:]
            for host in hosts {
                for parent in parents(of: host) { below[parent, default: 0] += 1 }
            }
            return below
        }
        // A host that is itself a qualifying parent (cdn.example.com, seen beside more than N
        // hosts under it) stays an exact entry beside its wildcard, and is not counted again
        // towards its own parent: otherwise seeing it would push the fold a level up.
        let anchors = Set(countBelow(hosts).filter { $0.value > threshold }.keys.map(String.init)).intersection(hosts)
        let below = countBelow(hosts.subtracting(anchors))
        var folded: [String: String] = [:]
        for host in hosts where !anchors.contains(host) {
            // parents(of:) is longest first: the first that qualifies is the most specific.
            if let parent = parents(of: host).first(where: { below[$0, default: 0] > threshold }) {
                folded[host] = "*." + parent
            }
        }
        // A host can fold under a.b.example.com while a sibling folds under b.example.com; the
        // shorter wildcard covers both.
        let chosen = Set(folded.values.map { $0.dropFirst(2) })
        for (host, wildcard) in folded {
            let parent = String(wildcard.dropFirst(2))
            if let covering = parents(of: parent).last(where: { chosen.contains($0) }) {
                folded[host] = "*." + covering
            }
        }
        // An anchor under a wildcard chosen for others is covered by it.
        for anchor in anchors {
            if let covering = parents(of: anchor).last(where: { chosen.contains($0) }) {
                folded[anchor] = "*." + covering
            }
        }
        return folded
    }

    /// The parent domains of `host` that may carry a wildcard, longest first:
    /// `a.b.example.com` → `b.example.com`, `example.com`.
    static func parents(of host: String) -> [Substring] {
        var result: [Substring] = []
        var rest = Substring(host)
        while let dot = rest.firstIndex(of: ".") {
            rest = rest[rest.index(after: dot)...]
            guard rest.utf8.contains(UInt8(ascii: ".")), !publicSuffixes.contains(String(rest)) else { break }
            result.append(rest)
        }
        return result
    }
}
