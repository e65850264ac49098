/// What `sluice inject` and `sluice injector` add to a pod: the image, the ConfigMaps the
/// sidecar reads, the sidecar's uid and resources. One value serves both, so the webhook's
/// result is the CLI's, byte for byte.
public struct SidecarTemplate: Sendable, Equatable {
    /// The image with `sluice`, `sluice-init` and the iptables templates
    /// (`scripts/image` builds it as `localhost/sluice:<version>`).
    public var image: String
    /// `imagePullPolicy` of both containers (`IfNotPresent`: a locally loaded image works).
    public var imagePullPolicy: String
    /// Kubernetes' native sidecar (an init container with `restartPolicy: Always`, Kubernetes
    /// 1.29+) unless a pod asks otherwise; `false` is the classic form (a regular container).
    public var nativeSidecar: Bool
    /// The ConfigMap with `sluice.yaml`, mounted at `configDirectory`.
    public var configMap: String
    /// The ConfigMap with the ServiceEntries, mounted at `registryDirectory`.
    public var registryConfigMap: String
    /// uid and gid of the sidecar; sluice-init exempts this uid's traffic from capture.
    public var proxyUID: Int
    /// CPU and memory requests of the sidecar, sized from `scripts/bench` (idle RSS 15 MiB,
    /// peak under load 16 MiB: 24Mi leaves half again as headroom).
    public var cpuRequest: String
    /// See `cpuRequest`.
    public var memoryRequest: String
    /// A memory limit far above the measured peak: the bound on a leak, not a working size.
    public var memoryLimit: String
    /// The ports sluice-init reserves in `net.ipv4.ip_local_reserved_ports`, also set as the
    /// pod's sysctl for runtimes whose init containers cannot write /proc/sys.
    public var reservedPorts: String
    /// Whether to set `reservedPorts` as the pod's sysctl: a safe sysctl from Kubernetes 1.27;
    /// older kubelets reject pods that set it unless it is allowed there.
    public var reservedPortsSysctl: Bool
    /// DNS capture for pods that do not say (`sluice inject --capture-dns`): the mesh-wide
    /// default, like Istio's `meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE`.
    public var captureDNS: Bool
    /// UDP capture for pods that do not say (`--capture-udp`).
    public var captureUDP: Bool

    /// Where the sidecar finds `sluice.yaml`.
    public static let configDirectory = "/etc/sluice/config"
    /// Where the ServiceEntries are mounted (`registry:` in the ConfigMap's `sluice.yaml`).
    public static let registryDirectory = "/etc/sluice/registry"
    /// Where the downward API puts the pod's labels (`POD_LABELS_FILE`).
    public static let podInfoDirectory = "/etc/sluice/pod"
    /// The sidecar's DNS proxy port (where sluice-init --capture-dns redirects port 53).
    public static let dnsPort = 15053
    /// The binaries' paths inside the image.
    public static let sluicePath = "/usr/local/bin/sluice"
    /// See `sluicePath`.
    public static let initPath = "/usr/local/bin/sluice-init"

    /// The defaults, with `image` as given.
    public init(
        image: String,
        imagePullPolicy: String = "IfNotPresent",
        nativeSidecar: Bool = true,
        configMap: String = "sluice-sidecar",
        registryConfigMap: String = "sluice-serviceentries",
        proxyUID: Int = 1337,
        cpuRequest: String = "10m",
        memoryRequest: String = "24Mi",
        memoryLimit: String = "128Mi",
        reservedPorts: String = "15000-15001,15021,15090",
        reservedPortsSysctl: Bool = true,
        captureDNS: Bool = false,
        captureUDP: Bool = false
    ) {
        self.image = image
        self.imagePullPolicy = imagePullPolicy
        self.nativeSidecar = nativeSidecar
        self.configMap = configMap
        self.registryConfigMap = registryConfigMap
        self.proxyUID = proxyUID
        self.cpuRequest = cpuRequest
        self.memoryRequest = memoryRequest
        self.memoryLimit = memoryLimit
        self.reservedPorts = reservedPorts
        self.reservedPortsSysctl = reservedPortsSysctl
        self.captureDNS = captureDNS
        self.captureUDP = captureUDP
    }
}

/// Names of what injection adds, as they appear in pod specs and in the status annotation.
public enum InjectedNames {
    /// The init container that runs `sluice-init`.
    public static let initContainer = "sluice-init"
    /// The sidecar container.
    public static let sidecar = "sluice"
    /// The volume with `sluice.yaml`.
    public static let configVolume = "sluice-config"
    /// The volume with the ServiceEntries.
    public static let registryVolume = "sluice-registry"
    /// The downward-API volume with the pod's labels.
    public static let podInfoVolume = "sluice-podinfo"
    /// Written on every injected pod, like Istio's `sidecar.istio.io/status`.
    public static let statusAnnotation = "sluice.io/status"
}
