import ArgumentParser
import Foundation
import SluiceInject

/// `sluice inject`: adds the sidecar to Kubernetes manifests, like `istioctl kube-inject`.
struct InjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inject",
        abstract: "Add the Sluice init container and sidecar to the pods of Kubernetes manifests.",
        discussion: """
            Reads YAML (several documents, Lists) and writes it to stdout with sluice-init, the \
            sidecar and their volumes added to every Pod, Deployment, StatefulSet, DaemonSet, \
            ReplicaSet, ReplicationController, Job and CronJob. Other kinds pass through; \
            injected pods and pods with sidecar.istio.io/inject: "false" are left as they are. \
            Istio's traffic.sidecar.istio.io/* annotations and proxy.istio.io/config \
            (concurrency, holdApplicationUntilProxyStarts, proxyMetadata.ISTIO_META_DNS_CAPTURE) \
            and sluice.io/capture-dns / sluice.io/capture-udp are honoured. Bad input: \
            path:line: message, exit 1.
            """
    )

    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("Manifest file, or - for standard input.", valueName: "file"))
    var filename: String

    @OptionGroup var template: TemplateOptions

    func run() throws {
        let text: String
        do {
            text = try readManifest(filename)
        } catch {
            printError("\(filename): \(error)")
            throw ExitCode(1)
        }
        do {
            let output = try ManifestInjection(template: template.sidecarTemplate).inject(yaml: text, path: filename)
            FileHandle.standardOutput.write(Data(output.utf8))
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Flags that shape what is injected; shared by `inject` and `injector` so both add the same.
struct TemplateOptions: ParsableArguments {
    @Option(name: .long, help: "Image with sluice and sluice-init (scripts/image builds localhost/sluice:<version>). Also from SLUICE_IMAGE.")
    var image: String?

    @Option(name: .customLong("sidecar-mode"), help: "native (an init container with restartPolicy: Always, Kubernetes 1.29+) or classic; a pod's sidecar.istio.io/nativeSidecar annotation wins.")
    var sidecarMode: String = "native"

    @Option(name: .customLong("config-map"), help: "ConfigMap with sluice.yaml.")
    var configMap: String = "sluice-sidecar"

    @Option(name: .customLong("registry-config-map"), help: "ConfigMap with the ServiceEntries.")
    var registryConfigMap: String = "sluice-serviceentries"

    @Option(name: .customLong("image-pull-policy"), help: "imagePullPolicy of the injected containers.")
    var imagePullPolicy: String = "IfNotPresent"

    @Flag(name: .customLong("reserved-ports-sysctl"), inversion: .prefixedNo,
          help: "Set net.ipv4.ip_local_reserved_ports as a pod sysctl (a safe sysctl from Kubernetes 1.27; older kubelets refuse it).")
    var reservedPortsSysctl = true

    @Flag(name: .customLong("capture-dns"),
          help: "DNS capture for every pod that does not say (Istio's meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE); a pod's sluice.io/capture-dns or proxy.istio.io/config wins.")
    var captureDNS = false

    @Flag(name: .customLong("capture-udp"),
          help: "UDP capture (NFQUEUE; the sidecar gets CAP_NET_ADMIN) for every pod that does not say; a pod's sluice.io/capture-udp wins.")
    var captureUDP = false

    func validate() throws {
        guard ["native", "classic"].contains(sidecarMode) else {
            throw ValidationError("--sidecar-mode must be native or classic, not \(sidecarMode)")
        }
        guard ["Always", "IfNotPresent", "Never"].contains(imagePullPolicy) else {
            throw ValidationError("--image-pull-policy must be Always, IfNotPresent or Never")
        }
    }

    var sidecarTemplate: SidecarTemplate {
        let image = self.image ?? ProcessEnvironment.value("SLUICE_IMAGE").flatMap { $0.isEmpty ? nil : $0 } ?? "localhost/sluice:latest"
        return SidecarTemplate(
            image: image, imagePullPolicy: imagePullPolicy, nativeSidecar: sidecarMode == "native",
            configMap: configMap, registryConfigMap: registryConfigMap, reservedPortsSysctl: reservedPortsSysctl,
            captureDNS: captureDNS, captureUDP: captureUDP)
    }
}

/// The manifest at `path`, or standard input for `-`.
func readManifest(_ path: String) throws -> String {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("not UTF-8 text")
    }
    return text
}
