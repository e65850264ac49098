import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceProxy

/// Who the workload is: what `exportTo`, `Sidecar` selection, `workloadSelector`,
/// `sourceLabels`, a Gateway's `selector` and ASM's `from` are matched against.
struct WorkloadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The pod's namespace, for exportTo, Sidecar selection and sourceNamespace. Also from POD_NAMESPACE; default \"default\".", valueName: "ns"))
    var namespace: String?

    @Option(name: .customLong("labels-file"), help: ArgumentHelp(
        "The pod's labels, in the downward API's format (one key=\"value\" a line), for workloadSelector, sourceLabels and a Gateway's selector. Also from POD_LABELS_FILE.",
        valueName: "file"))
    var labelsFile: String?

    @Option(name: .customLong("service-account"), help: ArgumentHelp(
        "The pod's service account. Also from SERVICE_ACCOUNT.", valueName: "sa"))
    var serviceAccount: String?

    /// `--namespace`, else `POD_NAMESPACE`, else `default` (as kubectl applies it).
    var resolvedNamespace: String {
        if let namespace, !namespace.isEmpty { return namespace }
        if let env = ProcessEnvironment.value("POD_NAMESPACE"), !env.isEmpty { return env }
        return "default"
    }

    /// The namespace, the labels read from `--labels-file` (or `POD_LABELS_FILE`) and the
    /// service account; an unreadable or malformed labels file is a usage error.
    func resolvedIdentity() throws -> WorkloadIdentity {
        var identity = WorkloadIdentity(namespace: resolvedNamespace)
        identity.serviceAccount = serviceAccount ?? ProcessEnvironment.value("SERVICE_ACCOUNT").flatMap { $0.isEmpty ? nil : $0 }
        let path = labelsFile ?? ProcessEnvironment.value("POD_LABELS_FILE").flatMap { $0.isEmpty ? nil : $0 }
        guard let path else { return identity }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("--labels-file: cannot read \(path)")
        }
        switch LabelsFile.parse(text) {
        case .success(let labels): identity.labels = labels
        case .failure(let error): throw ValidationError("--labels-file: \(path): \(error)")
        }
        return identity
    }
}

/// Flags shared by `sidecar` and `gateway`.
struct ProxyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Config file (sluice.yaml). Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    @OptionGroup var workload: WorkloadOptions

    @OptionGroup var certs: CertsOptions

    @Flag(name: .long, help: ArgumentHelp(
        "Audit mode whatever the config says: REGISTRY_ONLY denials are logged and counted, not enforced. Also SLUICE_AUDIT=1 (what the sluice.io/audit pod annotation sets)."))
    var audit = false

    /// `--audit`, or `SLUICE_AUDIT` set to 1 or true.
    var resolvedAudit: Bool {
        if audit { return true }
        let env = ProcessEnvironment.value("SLUICE_AUDIT")?.lowercased()
        return env == "1" || env == "true"
    }

    /// `SLUICE_CAPTURE_DNS` / `SLUICE_CAPTURE_UDP` set to 1 or true (what `sluice inject` sets
    /// for a pod with DNS / UDP capture): the sidecar serves `dns.proxy` / `udp.capture` whatever
    /// the shared sluice.yaml says, as sluice-init captures for this pod alone.
    var environmentCapture: (dns: Bool, udp: Bool) {
        func on(_ name: String) -> Bool {
            let env = ProcessEnvironment.value(name)?.lowercased()
            return env == "1" || env == "true"
        }
        return (on("SLUICE_CAPTURE_DNS"), on("SLUICE_CAPTURE_UDP"))
    }

    /// `SLUICE_DNS_AUTO_ALLOCATE` set to 1 or true (what `sluice inject` sets for a pod whose
    /// `proxy.istio.io/config` has `proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE: "true"`):
    /// `dns.autoAllocate` on in every configuration applied, whatever the shared sluice.yaml says.
    var environmentAutoAllocate: Bool {
        let env = ProcessEnvironment.value("SLUICE_DNS_AUTO_ALLOCATE")?.lowercased()
        return env == "1" || env == "true"
    }

    @Option(name: .customLong("outbound-port"), help: "Capture listener port (sidecar).")
    var outboundPort: Int = 15001

    @Option(name: .customLong("admin-port"), help: "Admin port, on 127.0.0.1 only.")
    var adminPort: Int = 15000

    @Option(name: .customLong("stats-port"), help: "Prometheus port (/stats/prometheus).")
    var statsPort: Int = 15090

    @Option(name: .customLong("health-port"), help: "Readiness port (/healthz/ready).")
    var healthPort: Int = 15021

    @Option(name: .long, help: "Event-loop threads (default: number of cores); the sidecar's capture listener has a socket per thread.")
    var concurrency: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        for (name, port) in [("outbound-port", outboundPort), ("admin-port", adminPort), ("stats-port", statsPort), ("health-port", healthPort)]
        where !(1...65535).contains(port) {
            throw ValidationError("--\(name) must be 1-65535, got \(port)")
        }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    var ports: ProxyPorts {
        var ports = ProxyPorts()
        ports.outbound = outboundPort
        ports.admin = adminPort
        ports.stats = statsPort
        ports.health = healthPort
        return ports
    }
}

/// The config path from `--config` or `SLUICE_CONFIG`, or a usage error.
func resolveConfigPath(_ flag: String?) throws -> String {
    if let flag { return flag }
    if let env = ProcessEnvironment.value("SLUICE_CONFIG"), !env.isEmpty { return env }
    throw ValidationError("no config: pass --config FILE or set SLUICE_CONFIG")
}

/// The config and registry at `configPath` for a command that reads them once (explain,
/// replay); an invalid `sluice.yaml` prints its diagnostics and exits 1.
func loadSnapshot(configPath: String, namespace: String, identity: WorkloadIdentity? = nil) throws -> SluiceSnapshot {
    switch SluiceSnapshot.load(configPath: configPath, namespace: namespace, identity: identity) {
    case .success(let loaded):
        return loaded
    case .failure(let diagnostics):
        for diagnostic in diagnostics { printError("\(diagnostic)") }
        throw ExitCode(1)
    }
}
