import Yams

/// Adds Sluice to one pod (a Pod, or the pod template of a workload): the `sluice-init`
/// init container, the `sluice` sidecar, their volumes, the status annotation and the
/// reserved-ports sysctl.
///
/// Order matters. Native form: `sluice-init`, then the sidecar (an init container with
/// `restartPolicy: Always`, started and ready before anything after it), then the app's own
/// init containers, whose traffic is therefore captured and served. Classic form: the app's
/// init containers first (nothing would serve their captured traffic yet), `sluice-init`
/// last, and the sidecar as the first regular container.
struct PodInjection {
    /// What to add.
    let template: SidecarTemplate

    /// What happened to a pod.
    enum Outcome: Equatable {
        /// Added; the new metadata and spec.
        case injected(metadata: Node.Mapping, spec: Node.Mapping)
        /// Left alone, and why (for `--verbose` style notes).
        case skipped(String)
    }

    /// Injects into a pod whose `metadata` (possibly absent) and `spec` are given.
    /// `path` names the file and `line` the object in errors.
    func inject(metadata: Node.Mapping?, spec: Node.Mapping, path: String) throws(InjectError) -> Outcome {
        let annotations = try PodAnnotations.read(metadata: metadata, path: path)
        if annotations.inject == false { return .skipped("sidecar injection is turned off by annotation or label") }
        if YAMLNodes.isTrue(YAMLNodes.text(spec, "hostNetwork")) {
            // Capture rules in the host's network namespace would capture the node.
            return .skipped("hostNetwork pods are never injected")
        }
        let initContainers = try list(spec, "initContainers", path: path)
        let containers = try list(spec, "containers", path: path)
        let volumes = try list(spec, "volumes", path: path)
        let names = Set((initContainers + containers).compactMap { $0.mapping.flatMap { YAMLNodes.text($0, "name") } })
        if names.contains(InjectedNames.sidecar) || names.contains(InjectedNames.initContainer)
            || metadata.flatMap({ YAMLNodes.value($0, "annotations")?.mapping }).flatMap({ YAMLNodes.value($0, InjectedNames.statusAnnotation) }) != nil {
            return .skipped("already injected")
        }

        let native = annotations.nativeSidecar ?? template.nativeSidecar
        let capture = Capture(dns: annotations.captureDNS ?? template.captureDNS, udp: annotations.captureUDP ?? template.captureUDP)
        let sidecar = sidecarContainer(annotations, native: native, capture: capture)
        var spec = spec
        if native {
            YAMLNodes.set(&spec, "initContainers", YAMLNodes.sequence([initContainer(annotations, capture: capture), sidecar] + initContainers))
        } else {
            YAMLNodes.set(&spec, "initContainers", YAMLNodes.sequence(initContainers + [initContainer(annotations, capture: capture)]))
            YAMLNodes.set(&spec, "containers", YAMLNodes.sequence([sidecar] + containers))
        }
        YAMLNodes.set(&spec, "volumes", YAMLNodes.sequence(volumes + injectedVolumes))
        if template.reservedPortsSysctl {
            // sluice-init --capture-dns reserves the DNS proxy's port too.
            let ports = template.reservedPorts + (capture.dns ? ",\(SidecarTemplate.dnsPort)" : "")
            try addReservedPortsSysctl(&spec, ports: ports, path: path)
        }

        var metadata = metadata ?? Node.Mapping([])
        var podAnnotations = YAMLNodes.value(metadata, "annotations")?.mapping ?? Node.Mapping([])
        let status = #"{"initContainers":["sluice-init"\#(native ? #","sluice""# : "")],"containers":[\#(native ? "" : #""sluice""#)],"volumes":["sluice-config","sluice-registry","sluice-podinfo"]}"#
        YAMLNodes.set(&podAnnotations, InjectedNames.statusAnnotation, YAMLNodes.string(status))
        // Istio's convention: scrape the sidecar unless the pod says how to scrape itself.
        if YAMLNodes.value(podAnnotations, "prometheus.io/scrape") == nil {
            YAMLNodes.set(&podAnnotations, "prometheus.io/scrape", YAMLNodes.string("true"))
            YAMLNodes.set(&podAnnotations, "prometheus.io/port", YAMLNodes.string("15090"))
            YAMLNodes.set(&podAnnotations, "prometheus.io/path", YAMLNodes.string("/stats/prometheus"))
        }
        YAMLNodes.set(&metadata, "annotations", .mapping(podAnnotations))
        return .injected(metadata: metadata, spec: spec)
    }

    /// The items of a list field; absent means empty, anything else is an error.
    private func list(_ spec: Node.Mapping, _ key: String, in parent: String = "spec", path: String) throws(InjectError) -> [Node] {
        guard let node = YAMLNodes.value(spec, key) else { return [] }
        if node.null != nil { return [] }
        guard let sequence = node.sequence else {
            throw InjectError(path: path, line: YAMLNodes.line(node), message: "\(parent).\(key) must be a list")
        }
        return Array(sequence)
    }

    /// Which of the optional captures a pod gets (the pod's annotations, else the template's).
    struct Capture {
        var dns: Bool
        var udp: Bool
    }

    private func initContainer(_ annotations: PodAnnotations, capture: Capture) -> Node {
        var fields: [(String, Node)] = [
            ("name", YAMLNodes.string(InjectedNames.initContainer)),
            ("image", YAMLNodes.string(template.image)),
            ("imagePullPolicy", YAMLNodes.string(template.imagePullPolicy)),
            ("command", YAMLNodes.strings([SidecarTemplate.initPath])),
        ]
        let arguments = (capture.udp ? ["--capture-udp"] : []) + (capture.dns ? ["--capture-dns"] : [])
        if !arguments.isEmpty { fields.append(("args", YAMLNodes.strings(arguments))) }
        var env = annotations.initEnvironment
        if template.proxyUID != 1337 {
            env.insert(contentsOf: [("SLUICE_PROXY_UID", String(template.proxyUID)), ("SLUICE_PROXY_GID", String(template.proxyUID))], at: 0)
        }
        if !env.isEmpty {
            fields.append(("env", YAMLNodes.sequence(env.map { value($0.0, $0.1) })))
        }
        fields.append(("resources", YAMLNodes.mapping([
            ("requests", YAMLNodes.mapping([("cpu", YAMLNodes.string("10m")), ("memory", YAMLNodes.string("16Mi"))])),
            ("limits", YAMLNodes.mapping([("memory", YAMLNodes.string("64Mi"))])),
        ])))
        // Root with NET_ADMIN and NET_RAW only (iptables), as Istio's istio-init; the root file
        // system stays writable because iptables takes its lock in /run.
        fields.append(("securityContext", YAMLNodes.mapping([
            ("allowPrivilegeEscalation", YAMLNodes.bool(false)),
            ("capabilities", YAMLNodes.mapping([
                ("add", YAMLNodes.strings(["NET_ADMIN", "NET_RAW"])),
                ("drop", YAMLNodes.strings(["ALL"])),
            ])),
            ("privileged", YAMLNodes.bool(false)),
            ("readOnlyRootFilesystem", YAMLNodes.bool(false)),
            ("runAsGroup", YAMLNodes.int(0)),
            ("runAsNonRoot", YAMLNodes.bool(false)),
            ("runAsUser", YAMLNodes.int(0)),
        ])))
        return YAMLNodes.mapping(fields)
    }

    private func sidecarContainer(_ annotations: PodAnnotations, native: Bool, capture: Capture) -> Node {
        var arguments = ["sidecar", "--config", SidecarTemplate.configDirectory + "/sluice.yaml"]
        if let concurrency = annotations.concurrency { arguments += ["--concurrency", String(concurrency)] }
        if annotations.audit { arguments.append("--audit") }
        var fields: [(String, Node)] = [
            ("name", YAMLNodes.string(InjectedNames.sidecar)),
            ("image", YAMLNodes.string(template.image)),
            ("imagePullPolicy", YAMLNodes.string(template.imagePullPolicy)),
            ("command", YAMLNodes.strings([SidecarTemplate.sluicePath])),
            ("args", YAMLNodes.strings(arguments)),
            ("env", YAMLNodes.sequence([
                fieldRef("POD_NAMESPACE", "metadata.namespace"),
                fieldRef("SERVICE_ACCOUNT", "spec.serviceAccountName"),
                value("POD_LABELS_FILE", SidecarTemplate.podInfoDirectory + "/labels"),
            ] + (capture.dns ? [value("SLUICE_CAPTURE_DNS", "true")] : [])
              + (capture.udp ? [value("SLUICE_CAPTURE_UDP", "true")] : [])
              + (annotations.dnsAutoAllocate == true ? [value("SLUICE_DNS_AUTO_ALLOCATE", "true")] : []))),
            ("ports", YAMLNodes.sequence([YAMLNodes.mapping([
                ("name", YAMLNodes.string("http-envoy-prom")),
                ("containerPort", YAMLNodes.int(15090)),
                ("protocol", YAMLNodes.string("TCP")),
            ])])),
            ("readinessProbe", probe(period: 2, failures: 30)),
        ]
        if native {
            // The pod's next containers start once this succeeds: the app never runs before
            // its outbound traffic can be served (Istio's holdApplicationUntilProxyStarts).
            fields.append(("startupProbe", probe(period: 1, failures: 600)))
            fields.append(("restartPolicy", YAMLNodes.string("Always")))
        }
        var requests: [(String, Node)] = [
            ("cpu", YAMLNodes.string(annotations.cpuRequest ?? template.cpuRequest)),
            ("memory", YAMLNodes.string(annotations.memoryRequest ?? template.memoryRequest)),
        ]
        requests = requests.filter { !($0.1.scalar?.string.isEmpty ?? true) }
        var limits: [(String, Node)] = []
        if let cpuLimit = annotations.cpuLimit { limits.append(("cpu", YAMLNodes.string(cpuLimit))) }
        limits.append(("memory", YAMLNodes.string(annotations.memoryLimit ?? template.memoryLimit)))
        fields.append(("resources", YAMLNodes.mapping([("requests", YAMLNodes.mapping(requests)), ("limits", YAMLNodes.mapping(limits))])))
        // Binding an NFQUEUE needs CAP_NET_ADMIN. Kubernetes gives an added capability to
        // uid 0 only (a non-root user gets it in no effective set), so with UDP capture the
        // sidecar runs as root with the proxy's gid, which sluice-init exempts as it does the uid.
        var capabilities: [(String, Node)] = [("drop", YAMLNodes.strings(["ALL"]))]
        if capture.udp { capabilities.insert(("add", YAMLNodes.strings(["NET_ADMIN"])), at: 0) }
        fields.append(("securityContext", YAMLNodes.mapping([
            ("allowPrivilegeEscalation", YAMLNodes.bool(false)),
            ("capabilities", YAMLNodes.mapping(capabilities)),
            ("privileged", YAMLNodes.bool(false)),
            ("readOnlyRootFilesystem", YAMLNodes.bool(true)),
            ("runAsGroup", YAMLNodes.int(template.proxyUID)),
            ("runAsNonRoot", YAMLNodes.bool(!capture.udp)),
            ("runAsUser", YAMLNodes.int(capture.udp ? 0 : template.proxyUID)),
        ])))
        fields.append(("volumeMounts", YAMLNodes.sequence([
            mount(InjectedNames.configVolume, SidecarTemplate.configDirectory),
            mount(InjectedNames.registryVolume, SidecarTemplate.registryDirectory),
            mount(InjectedNames.podInfoVolume, SidecarTemplate.podInfoDirectory),
        ])))
        return YAMLNodes.mapping(fields)
    }

    private func value(_ name: String, _ value: String) -> Node {
        YAMLNodes.mapping([("name", YAMLNodes.string(name)), ("value", YAMLNodes.string(value))])
    }

    private func fieldRef(_ name: String, _ path: String) -> Node {
        YAMLNodes.mapping([
            ("name", YAMLNodes.string(name)),
            ("valueFrom", YAMLNodes.mapping([("fieldRef", YAMLNodes.mapping([("fieldPath", YAMLNodes.string(path))]))])),
        ])
    }

    private func probe(period: Int, failures: Int) -> Node {
        YAMLNodes.mapping([
            ("httpGet", YAMLNodes.mapping([("path", YAMLNodes.string("/healthz/ready")), ("port", YAMLNodes.int(15021))])),
            ("periodSeconds", YAMLNodes.int(period)),
            ("failureThreshold", YAMLNodes.int(failures)),
            ("timeoutSeconds", YAMLNodes.int(3)),
        ])
    }

    private func mount(_ name: String, _ path: String) -> Node {
        YAMLNodes.mapping([("name", YAMLNodes.string(name)), ("mountPath", YAMLNodes.string(path)), ("readOnly", YAMLNodes.bool(true))])
    }

    private var injectedVolumes: [Node] {
        [
            YAMLNodes.mapping([("name", YAMLNodes.string(InjectedNames.configVolume)),
                               ("configMap", YAMLNodes.mapping([("name", YAMLNodes.string(template.configMap))]))]),
            YAMLNodes.mapping([("name", YAMLNodes.string(InjectedNames.registryVolume)),
                               ("configMap", YAMLNodes.mapping([("name", YAMLNodes.string(template.registryConfigMap))]))]),
            YAMLNodes.mapping([("name", YAMLNodes.string(InjectedNames.podInfoVolume)),
                               ("downwardAPI", YAMLNodes.mapping([("items", YAMLNodes.sequence([YAMLNodes.mapping([
                                   ("path", YAMLNodes.string("labels")),
                                   ("fieldRef", YAMLNodes.mapping([("fieldPath", YAMLNodes.string("metadata.labels"))])),
                               ])]))]))]),
        ]
    }

    /// Adds `net.ipv4.ip_local_reserved_ports` to the pod's sysctls (a safe sysctl since
    /// Kubernetes 1.27) for runtimes where sluice-init cannot write /proc/sys; a value the
    /// pod already sets is kept and extended.
    private func addReservedPortsSysctl(_ spec: inout Node.Mapping, ports: String, path: String) throws(InjectError) {
        let key = "net.ipv4.ip_local_reserved_ports"
        var podSecurity = YAMLNodes.value(spec, "securityContext")?.mapping ?? Node.Mapping([])
        var sysctls = try list(podSecurity, "sysctls", in: "spec.securityContext", path: path)
        if let index = sysctls.firstIndex(where: { $0.mapping.flatMap { YAMLNodes.text($0, "name") } == key }),
           var existing = sysctls[index].mapping {
            let value = YAMLNodes.text(existing, "value") ?? ""
            let merged = value.isEmpty ? ports : value + "," + ports
            YAMLNodes.set(&existing, "value", YAMLNodes.string(merged))
            sysctls[index] = .mapping(existing)
        } else {
            sysctls.append(YAMLNodes.mapping([("name", YAMLNodes.string(key)), ("value", YAMLNodes.string(ports))]))
        }
        YAMLNodes.set(&podSecurity, "sysctls", YAMLNodes.sequence(sysctls))
        YAMLNodes.set(&spec, "securityContext", .mapping(podSecurity))
    }
}
