/// Which Sidecar resource applies to a workload, and what it lets the workload see.
public enum SidecarScope {
    /// Istio's root namespace: its selector-less Sidecar is the mesh-wide default.
    public static let rootNamespace = "istio-system"

    /// Istio's rule (Sidecar reference): the Sidecar in the workload's namespace whose
    /// `workloadSelector` selects it, else that namespace's one without a selector, else the
    /// root namespace's one without a selector. The first loaded wins among equals.
    public static func select(_ sidecars: [SidecarResource], for identity: WorkloadIdentity) -> SidecarResource? {
        let own = sidecars.filter { $0.id.namespace == identity.namespace }
        if let selected = own.first(where: { $0.workloadSelector.map(identity.isSelected(by:)) ?? false }) { return selected }
        if let namespaceDefault = own.first(where: { $0.workloadSelector == nil }) { return namespaceDefault }
        return sidecars.first { $0.id.namespace == rootNamespace && $0.workloadSelector == nil }
    }

    /// Whether `host` of an object in `namespace` is imported by the Sidecar's `egress` hosts
    /// (`namespace/dnsName`: `*` any namespace, `.` the Sidecar's own, `~` none; dnsName
    /// exact, `*`, or `*.suffix`). A Sidecar without egress listeners imports everything.
    public static func imports(_ sidecar: SidecarResource, host: String, namespace: String) -> Bool {
        importedPorts(sidecar, host: host, namespace: namespace) != .some([])
    }

    /// The ports on which `host` is imported: nil for every port (a listener without a port,
    /// or no egress listeners at all), an empty set when it is not imported.
    static func importedPorts(_ sidecar: SidecarResource, host: String, namespace: String) -> Set<Int>? {
        let listeners = sidecar.egress.isEmpty
            ? (sidecar.egressHosts.isEmpty ? [] : [SidecarResource.EgressListener(hosts: sidecar.egressHosts)])
            : sidecar.egress
        guard !listeners.isEmpty else { return nil }
        var ports: Set<Int> = []
        for listener in listeners where listener.hosts.contains(where: { covers($0, sidecar: sidecar, host: host, namespace: namespace) }) {
            guard let port = listener.port else { return nil }
            ports.insert(port)
        }
        return ports
    }

    private static func covers(_ pattern: String, sidecar: SidecarResource, host: String, namespace: String) -> Bool {
        let parts = pattern.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return false }
        let (ns, name) = (parts[0], parts[1].lowercased())
        switch ns {
        case "*": break
        case ".": if namespace != sidecar.id.namespace { return false }
        case "~": return false
        default: if namespace != ns { return false }
        }
        return HostPattern.matches(name, host)
    }

    /// The entries `sidecar` imports, each keeping only its imported hosts and — where the
    /// egress listener that imports them names a port — only those ports.
    public static func visibleEntries(_ entries: [ServiceEntry], sidecar: SidecarResource?) -> [ServiceEntry] {
        guard let sidecar, !(sidecar.egress.isEmpty && sidecar.egressHosts.isEmpty) else { return entries }
        return entries.compactMap { entry in
            var copy = entry
            var allPorts = false
            var ports: Set<Int> = []
            copy.hosts = entry.hosts.filter { host in
                guard let imported = importedPorts(sidecar, host: host, namespace: entry.namespace) else {
                    allPorts = true
                    return true
                }
                ports.formUnion(imported)
                return !imported.isEmpty
            }
            guard !copy.hosts.isEmpty else { return nil }
            if !allPorts {
                copy.ports = entry.ports.filter { ports.contains($0.number) }
                if copy.ports.isEmpty { return nil }
            }
            return copy
        }
    }
}

/// Host names and patterns as Istio compares them: exact, `*`, `*.suffix`.
public enum HostPattern {
    /// Whether `pattern` covers `host` (both lower-cased; a pattern `*.a.com` does not
    /// cover `a.com`). A wildcard host is covered when its suffix is.
    public static func matches(_ pattern: String, _ host: String) -> Bool {
        if pattern == "*" || pattern == host { return true }
        guard pattern.hasPrefix("*.") else { return false }
        let suffix = pattern.dropFirst()
        if host.hasPrefix("*.") { return host.dropFirst().hasSuffix(suffix) }
        return host.hasSuffix(suffix) && host.count > suffix.count
    }

    /// How specific a matching pattern is: exact beats any wildcard, longer beats shorter.
    public static func specificity(_ pattern: String) -> Int {
        pattern.hasPrefix("*") ? pattern.count : 10_000 + pattern.count
    }

    /// A VirtualService or DestinationRule host in full: a short name is a Kubernetes
    /// Service of the object's namespace (`reviews` → `reviews.ns.svc.cluster.local`).
    public static func qualified(_ host: String, namespace: String) -> String {
        let lower = host.lowercased()
        if lower == "*" || lower.contains(".") { return lower }
        return "\(lower).\(namespace).svc.cluster.local"
    }
}
