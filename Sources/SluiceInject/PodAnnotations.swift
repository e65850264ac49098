import Yams

/// What a pod asks of injection through its labels and annotations. Istio's names are
/// honoured where they mean the same thing, so a workload written for Istio needs no edits;
/// `sluice.io/…` names win over Istio's when both are set.
struct PodAnnotations: Equatable {
    /// `false`: leave the pod alone (`sidecar.istio.io/inject`, `sluice.io/inject`, label or
    /// annotation). `true`: inject even where the namespace did not ask (webhook only).
    var inject: Bool?
    /// `traffic.sidecar.istio.io/excludeOutboundIPRanges` → `SLUICE_EXCLUDE_CIDRS`.
    var excludeCIDRs: String?
    /// `traffic.sidecar.istio.io/includeOutboundIPRanges` → `SLUICE_INCLUDE_CIDRS`.
    var includeCIDRs: String?
    /// `traffic.sidecar.istio.io/excludeOutboundPorts` → `SLUICE_EXCLUDE_PORTS`.
    var excludePorts: String?
    /// `traffic.sidecar.istio.io/includeOutboundPorts` → `SLUICE_INCLUDE_PORTS`.
    var includePorts: String?
    /// `proxy.istio.io/config` `concurrency` → `--concurrency` (0 means "all cores" in Istio,
    /// which is Sluice's default, so it is left out).
    var concurrency: Int?
    /// `proxy.istio.io/config` `holdApplicationUntilProxyStarts`, or
    /// `sidecar.istio.io/nativeSidecar` / `sluice.io/native-sidecar`: which sidecar form.
    var nativeSidecar: Bool?
    /// `sluice.io/audit: "true"`: this workload's sidecar runs in audit mode (`--audit`) whatever
    /// the namespace's sluice.yaml says: REGISTRY_ONLY denials are logged, not enforced.
    var audit = false
    /// `sidecar.istio.io/proxyCPU`, `proxyMemory`, `proxyCPULimit`, `proxyMemoryLimit`.
    var cpuRequest: String?
    /// See `cpuRequest`.
    var memoryRequest: String?
    /// See `cpuRequest`.
    var cpuLimit: String?
    /// See `cpuRequest`.
    var memoryLimit: String?
    /// `sluice.io/capture-dns`, else `proxy.istio.io/config` `proxyMetadata.ISTIO_META_DNS_CAPTURE`
    /// (Istio's switch for DNS capture): port 53 goes to the sidecar's DNS proxy.
    var captureDNS: Bool?
    /// `sluice.io/capture-udp`: outbound UDP waits in NFQUEUE for the sidecar's verdict.
    var captureUDP: Bool?
    /// `proxy.istio.io/config` `proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE` (Istio's switch for
    /// auto-allocated addresses) → the sidecar's `SLUICE_DNS_AUTO_ALLOCATE`: `dns.autoAllocate`
    /// on whatever the shared sluice.yaml says. As in Istio it matters only with DNS capture.
    var dnsAutoAllocate: Bool?

    /// Reads the pod template's `metadata`; `path` names the file in errors.
    static func read(metadata: Node.Mapping?, path: String) throws(InjectError) -> PodAnnotations {
        var result = PodAnnotations()
        let labels = metadata.flatMap { YAMLNodes.value($0, "labels")?.mapping }
        let annotations = metadata.flatMap { YAMLNodes.value($0, "annotations")?.mapping }
        func label(_ key: String) -> String? { labels.flatMap { YAMLNodes.text($0, key) } }
        func annotation(_ key: String) -> String? { annotations.flatMap { YAMLNodes.text($0, key) } }

        for text in [label("sidecar.istio.io/inject"), annotation("sidecar.istio.io/inject"),
                     label("sluice.io/inject"), annotation("sluice.io/inject")] {
            if YAMLNodes.isFalse(text) { result.inject = false } else if YAMLNodes.isTrue(text) { result.inject = true }
        }
        result.excludeCIDRs = annotation("traffic.sidecar.istio.io/excludeOutboundIPRanges")
        result.includeCIDRs = annotation("traffic.sidecar.istio.io/includeOutboundIPRanges")
        result.excludePorts = annotation("traffic.sidecar.istio.io/excludeOutboundPorts")
        result.includePorts = annotation("traffic.sidecar.istio.io/includeOutboundPorts")
        result.audit = YAMLNodes.isTrue(annotation("sluice.io/audit"))
        result.cpuRequest = annotation("sidecar.istio.io/proxyCPU")
        result.memoryRequest = annotation("sidecar.istio.io/proxyMemory")
        result.cpuLimit = annotation("sidecar.istio.io/proxyCPULimit")
        result.memoryLimit = annotation("sidecar.istio.io/proxyMemoryLimit")

        if let annotations, let node = YAMLNodes.value(annotations, "proxy.istio.io/config"), let text = node.scalar?.string {
            try result.readProxyConfig(text, line: YAMLNodes.line(node), path: path)
        }
        // Sluice's own annotation wins over the proxyMetadata read above.
        if YAMLNodes.isTrue(annotation("sluice.io/capture-dns")) { result.captureDNS = true }
        if YAMLNodes.isFalse(annotation("sluice.io/capture-dns")) { result.captureDNS = false }
        if YAMLNodes.isTrue(annotation("sluice.io/capture-udp")) { result.captureUDP = true }
        if YAMLNodes.isFalse(annotation("sluice.io/capture-udp")) { result.captureUDP = false }
        for key in ["sidecar.istio.io/nativeSidecar", "sluice.io/native-sidecar"] {
            if YAMLNodes.isTrue(annotation(key)) { result.nativeSidecar = true }
            if YAMLNodes.isFalse(annotation(key)) { result.nativeSidecar = false }
        }
        return result
    }

    /// The fields of Istio's ProxyConfig that mean something to Sluice; the others (tracing,
    /// discovery, Envoy's own settings) have no counterpart and are ignored.
    private mutating func readProxyConfig(_ text: String, line: Int?, path: String) throws(InjectError) {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            let inner = InjectError.syntax(error, path: path)
            throw InjectError(path: path, line: line, message: "proxy.istio.io/config: \(inner.message)")
        }
        guard let node else { return }
        guard let config = node.mapping else {
            throw InjectError(path: path, line: line, message: "proxy.istio.io/config: must be a ProxyConfig mapping")
        }
        if let value = YAMLNodes.value(config, "concurrency") {
            guard let number = value.int, number >= 0 else {
                throw InjectError(path: path, line: line, message: "proxy.istio.io/config: concurrency must be a whole number, not \(value.scalar?.string ?? "a structure")")
            }
            concurrency = number == 0 ? nil : number
        }
        if let value = YAMLNodes.value(config, "holdApplicationUntilProxyStarts") {
            guard let hold = value.bool else {
                throw InjectError(path: path, line: line, message: "proxy.istio.io/config: holdApplicationUntilProxyStarts must be true or false")
            }
            // Holding the app until the proxy is ready is exactly what a native sidecar's
            // startup probe does; Istio's own native mode implies it.
            if hold { nativeSidecar = true }
        }
        if let value = YAMLNodes.value(config, "proxyMetadata") {
            guard let metadata = value.mapping else {
                throw InjectError(path: path, line: line, message: "proxy.istio.io/config: proxyMetadata must be a mapping of names to strings")
            }
            // Istio reads these as environment variables, so "true" (quoted or not) is on and
            // "false" off; anything else is a mistake worth saying.
            func flag(_ name: String) throws(InjectError) -> Bool? {
                guard let node = YAMLNodes.value(metadata, name) else { return nil }
                let text = node.scalar?.string
                if YAMLNodes.isTrue(text) { return true }
                if YAMLNodes.isFalse(text) { return false }
                throw InjectError(path: path, line: line, message: "proxy.istio.io/config: proxyMetadata.\(name) must be \"true\" or \"false\", not \(text ?? "a structure")")
            }
            if let on = try flag("ISTIO_META_DNS_CAPTURE") { captureDNS = on }
            if let on = try flag("ISTIO_META_DNS_AUTO_ALLOCATE") { dnsAutoAllocate = on }
        }
    }

    /// The init container's environment: sluice-init's `SLUICE_*` variables.
    var initEnvironment: [(String, String)] {
        var env: [(String, String)] = []
        if let includeCIDRs { env.append(("SLUICE_INCLUDE_CIDRS", includeCIDRs)) }
        if let excludeCIDRs { env.append(("SLUICE_EXCLUDE_CIDRS", excludeCIDRs)) }
        // An empty port list means "no ports named" in Istio and in sluice-init alike.
        if let includePorts, !includePorts.isEmpty { env.append(("SLUICE_INCLUDE_PORTS", includePorts)) }
        if let excludePorts, !excludePorts.isEmpty { env.append(("SLUICE_EXCLUDE_PORTS", excludePorts)) }
        return env
    }
}
