import Foundation

/// A config and the registry it names, loaded together: the unit the proxy swaps atomically
/// when files change, so a request never sees a new config with an old registry.
public struct SluiceSnapshot: Sendable {
    /// The parsed `sluice.yaml`.
    public var config: SluiceConfig
    /// The registry this workload sees: the entries exported to its namespace.
    public var registry: Registry
    /// Every entry in force, visible to this namespace or not (kept last good versions included).
    public var entries: [ServiceEntry]
    /// The Gateways, VirtualServices, DestinationRules, Sidecars and ASMEgressTrafficPolicies
    /// loaded beside the entries; `policy(role:)` compiles them for this workload.
    public var routing = RoutingObjects()
    /// AuthorizationPolicies loaded beside the entries (all namespaces; the gateway keeps those
    /// that select it). A rejected one keeps its last good version: dropping a DENY on a bad
    /// edit would open what it closed.
    public var authorizationPolicies: [AuthorizationPolicy] = []
    /// The namespace the workload runs in (`--namespace`, `POD_NAMESPACE`), for `exportTo`.
    public var namespace: String {
        get { identity.namespace }
        set { identity.namespace = newValue }
    }
    /// Who the workload is (namespace, labels, service account): what selectors match.
    public var identity: WorkloadIdentity
    /// Errors (rejected objects), warnings and notes from loading, in file order.
    public var diagnostics: [ConfigDiagnostic]
    /// How many registry objects this load rejected (each keeps its last good version, if any).
    public var rejectedObjects: Int
    /// The config file, each configured registry path (directories included, since a new file
    /// may appear in one) and every registry file read: what a watcher should poll for changes.
    public var watchedPaths: [String]

    /// Creates a snapshot from parts already loaded; `registry` holds `entries` visible to `namespace`.
    public init(
        config: SluiceConfig, entries: [ServiceEntry], namespace: String = "default",
        diagnostics: [ConfigDiagnostic] = [], rejectedObjects: Int = 0, watchedPaths: [String] = []
    ) {
        self.config = config
        self.entries = entries
        self.identity = WorkloadIdentity(namespace: namespace)
        let registry = Registry(entries.filter { $0.isVisible(fromNamespace: namespace) })
        self.registry = registry
        self.diagnostics = diagnostics + registry.conflicts
        self.rejectedObjects = rejectedObjects
        self.watchedPaths = watchedPaths
    }

    /// Creates a snapshot around a registry already built (tests, benchmarks).
    public init(config: SluiceConfig, registry: Registry, diagnostics: [ConfigDiagnostic] = [], watchedPaths: [String] = []) {
        self.config = config
        self.entries = registry.entries
        self.identity = WorkloadIdentity()
        self.registry = registry
        self.diagnostics = diagnostics
        self.rejectedObjects = 0
        self.watchedPaths = watchedPaths
    }

    /// True when some object was rejected or a file could not be read: `sluice check` fails.
    public var hasErrors: Bool { diagnostics.contains { $0.isError } }

    /// The decision stage for `role` built from this snapshot. The mode defaults as Istio's
    /// do: ALLOW_ANY at a sidecar, REGISTRY_ONLY at a gateway (which serves registered hosts only).
    /// `forceAudit` (the `--audit` flag, a pod's annotation) turns audit on whatever the file says.
    ///
    /// The routing objects are compiled here, once per snapshot, for `role` and this
    /// workload (`RouteTable.compile`): the Sidecar resource that selects the workload sets the
    /// mode (over the file's) and hides the hosts its `egress` does not import.
    public func policy(role: ProxyRole, forceAudit: Bool = false) -> Policy {
        let table = routing.count == 0 ? nil : RouteTable.compile(routing, role: role, identity: identity)
        let sidecar = table?.sidecar
        let mode = sidecar?.outboundMode ?? config.mode ?? (role == .gateway ? .registryOnly : .allowAny)
        var visible = registry
        if let sidecar, !(sidecar.egress.isEmpty && sidecar.egressHosts.isEmpty) {
            visible = Registry(SidecarScope.visibleEntries(registry.entries, sidecar: sidecar))
        }
        var policy = Policy(mode: mode, registry: visible, gateway: config.egressGateway, role: role, audit: config.audit || forceAudit)
        policy.destinationRules = table?.destinationRules ?? []
        policy.routes = table
        return policy
    }

    /// Loads the config at `configPath`, then every registry file it names.
    ///
    /// An invalid `sluice.yaml`, or a registry path that does not exist, fails the whole load
    /// (the watcher keeps the last good snapshot). An invalid registry object is rejected on its
    /// own, like an admission webhook refusing one `kubectl apply`: the rest applies, and an
    /// object that `previous` held keeps that last good version — as do the objects of a file
    /// that no longer parses to its end.
    /// `identity` (labels, service account) defaults to `previous`'s, so that a reload keeps it.
    public static func load(
        configPath: String, namespace: String = "default", identity: WorkloadIdentity? = nil, previous: SluiceSnapshot? = nil
    ) -> Result<SluiceSnapshot, ConfigDiagnostics> {
        let config: SluiceConfig
        switch SluiceConfig.load(path: configPath) {
        case .success(let loaded): config = loaded
        case .failure(let diagnostics): return .failure(diagnostics)
        }
        let absoluteConfigPath = ConfigPath.resolve(configPath, relativeTo: FileManager.default.currentDirectoryPath)
        let base = ConfigPath.directory(of: absoluteConfigPath)
        let loaded = RegistryLoader.load(paths: config.registryPaths, relativeTo: base)
        if !loaded.pathErrors.isEmpty { return .failure(ConfigDiagnostics(loaded.diagnostics)) }
        var diagnostics = loaded.diagnostics
        let entries = keepingLastGood(loaded, previous: previous?.entries ?? [], diagnostics: &diagnostics)
        let routing = keepingLastGoodRouting(loaded, previous: previous?.routing, diagnostics: &diagnostics)
        diagnostics += RoutingAnalysis.analyze(routing, entries: entries)
        var watched = [absoluteConfigPath]
        for path in config.registryPaths.map({ ConfigPath.resolve($0, relativeTo: base) }) + loaded.files
        where !watched.contains(path) {
            watched.append(path)
        }
        var snapshot = SluiceSnapshot(
            config: config, entries: entries, namespace: namespace, diagnostics: diagnostics,
            rejectedObjects: loaded.rejected.count + loaded.rejectedRoutingObjects + Set(loaded.incompleteFiles).count
                + loaded.rejectedAuthorizationPolicies.count,
            watchedPaths: watched)
        snapshot.routing = routing
        if var kept = identity ?? previous?.identity {
            kept.namespace = namespace
            snapshot.identity = kept
        }
        snapshot.authorizationPolicies = loaded.authorizationPolicies
        for old in previous?.authorizationPolicies ?? []
        where loaded.rejectedAuthorizationPolicies.contains("\(old.namespace)/\(old.name)")
            && !loaded.authorizationPolicies.contains(where: { $0.namespace == old.namespace && $0.name == old.name })
        {
            snapshot.authorizationPolicies.append(old)
            snapshot.diagnostics.append(ConfigDiagnostic(
                severity: .warning, path: old.source.path, line: old.source.line,
                resource: "AuthorizationPolicy \(old.namespace)/\(old.name)",
                message: "keeping its last good version: the new one was rejected"))
        }
        return .success(snapshot)
    }

    /// The loaded routing objects plus, for each one rejected now (or left in a file that did
    /// not parse) that `previous` held, its last good version: the rule ServiceEntries follow.
    static func keepingLastGoodRouting(
        _ loaded: RegistryLoadResult, previous: RoutingObjects?, diagnostics: inout [ConfigDiagnostic]
    ) -> RoutingObjects {
        guard let previous, !(loaded.rejectedRoutingIDs.isEmpty && loaded.incompleteFiles.isEmpty) else { return loaded.routing }
        let rejected = Set(loaded.rejectedRoutingIDs)
        let incomplete = Set(loaded.incompleteFiles)
        var routing = loaded.routing
        func keep<Object>(_ old: [Object], into current: inout [Object], id: (Object) -> RoutingObjectID, source: (Object) -> SourceLocation) {
            let present = Set(current.map(id))
            for object in old where !present.contains(id(object)) && (rejected.contains(id(object)) || incomplete.contains(source(object).path)) {
                current.append(object)
                diagnostics.append(ConfigDiagnostic(
                    severity: .warning, path: source(object).path, line: source(object).line, resource: id(object).description,
                    message: "keeping its last good version: the new one was rejected"))
            }
        }
        keep(previous.gateways, into: &routing.gateways, id: \.id, source: \.source)
        keep(previous.virtualServices, into: &routing.virtualServices, id: \.id, source: \.source)
        keep(previous.destinationRules, into: &routing.destinationRules, id: \.id, source: \.source)
        keep(previous.sidecars, into: &routing.sidecars, id: \.id, source: \.source)
        keep(previous.egressTrafficPolicies, into: &routing.egressTrafficPolicies, id: \.id, source: \.source)
        return routing
    }

    /// The loaded entries plus, for each object rejected now (or left in a file that did not
    /// parse) that `previous` held, its last good version, in load order.
    static func keepingLastGood(
        _ loaded: RegistryLoadResult, previous: [ServiceEntry], diagnostics: inout [ConfigDiagnostic]
    ) -> [ServiceEntry] {
        guard !previous.isEmpty, !(loaded.rejected.isEmpty && loaded.incompleteFiles.isEmpty) else { return loaded.entries }
        let present = Set(loaded.entries.map(\.key))
        let rejected = Set(loaded.rejected)
        let incomplete = Set(loaded.incompleteFiles)
        var kept: [ServiceEntry] = []
        for old in previous where !present.contains(old.key) && (rejected.contains(old.key) || incomplete.contains(old.source.path)) {
            kept.append(old)
            diagnostics.append(ConfigDiagnostic(
                severity: .warning, path: old.source.path, line: old.source.line, resource: old.resourceName,
                message: "keeping its last good version: the new one was rejected"))
        }
        guard !kept.isEmpty else { return loaded.entries }
        // Load order decides conflicts (first loaded wins): put each kept object back where it stood.
        var rank: [String: Int] = [:]
        for (index, file) in loaded.files.enumerated() where rank[file] == nil { rank[file] = index }
        return (loaded.entries + kept).enumerated().sorted { lhs, rhs in
            let left = (rank[lhs.element.source.path] ?? Int.max, lhs.element.source.line, lhs.offset)
            let right = (rank[rhs.element.source.path] ?? Int.max, rhs.element.source.line, rhs.offset)
            return left < right
        }.map(\.element)
    }
}
