import ArgumentParser
import SluiceCore

/// `sluice check`: validates a config and its registry.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the config and its registry (ServiceEntries, routing and security objects); exit 0 if valid, 1 if not.",
        discussion: """
            Each problem is printed as `path:line: message`. An invalid ServiceEntry, Gateway, \
            VirtualService, DestinationRule, Sidecar or ASMEgressTrafficPolicy makes check exit 1; \
            a running proxy rejects it on its own and applies the rest. Cross-references are checked \
            as istioctl analyze does (unknown gateways, destinations, subsets, resolution NONE through \
            a gateway). Notes say which accepted fields Sluice does not enforce, and which route \
            behaviours the data path does not apply yet. The summary counts the routes each role \
            compiles for this workload (--namespace, --labels-file).
            """
    )

    @Option(name: .long, help: ArgumentHelp("Config file. Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    @OptionGroup var workload: WorkloadOptions

    func run() throws {
        let path = try resolveConfigPath(config)
        switch SluiceSnapshot.load(configPath: path, namespace: workload.resolvedNamespace, identity: try workload.resolvedIdentity()) {
        case .success(let snapshot):
            let hidden = snapshot.entries.count - snapshot.registry.entries.count
            var visibility = hidden > 0 ? " (\(hidden) more not exported to namespace \(snapshot.namespace))" : ""
            if snapshot.routing.count > 0 {
                visibility += "; \(snapshot.routing.count) Gateway/VirtualService/DestinationRule/Sidecar/ASMEgressTrafficPolicy objects"
                for role in [ProxyRole.sidecar, .gateway] {
                    let table = RouteTable.compile(snapshot.routing, role: role, identity: snapshot.identity)
                    visibility += "; as \(role.rawValue): \(table.httpRoutes.count) http, \(table.tlsRoutes.count) tls, \(table.tcpRoutes.count) tcp routes"
                    if role == .gateway { visibility += ", \(table.servers.count) Gateway servers" }
                    if role == .sidecar, let sidecar = table.sidecar { visibility += ", \(sidecar.id)" }
                }
            }
            guard !snapshot.hasErrors else {
                // A running proxy leaves the rejected objects out and serves the rest; the
                // file set is still not what its author meant.
                for diagnostic in snapshot.diagnostics {
                    if diagnostic.isError { printError("\(diagnostic)") } else { print("\(diagnostic)") }
                }
                printError("\(path): invalid: \(snapshot.rejectedObjects) rejected; \(snapshot.registry.entries.count) ServiceEntries would apply\(visibility)")
                throw ExitCode(1)
            }
            for diagnostic in snapshot.diagnostics { print("\(diagnostic)") }
            print("\(path): ok: \(snapshot.registry.entries.count) ServiceEntries\(visibility)")
        case .failure(let diagnostics):
            for diagnostic in diagnostics { printError("\(diagnostic)") }
            throw ExitCode(1)
        }
    }
}
