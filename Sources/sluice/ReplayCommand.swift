import ArgumentParser
import Foundation
import SluiceCore

/// `sluice replay`: what a configuration would allow and deny of the traffic in access logs.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Summarise what a config would allow and deny of the traffic in access logs.",
        discussion: """
            Reads JSON access logs (as sluice learn does: several files, rotated *.gz, - for \
            stdin) and decides every logged request and connection again with --config's \
            registry and policy, through the proxy's own decision stage. Prints how many would \
            be allowed and denied, and which destinations would newly be denied (let through in \
            the log, including audit-mode lines, and denied by this config): test a registry \
            change, or the switch from audit to REGISTRY_ONLY, against yesterday's traffic.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Config file. Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: "Decide as the sidecar or the gateway.")
    var role: String = "sidecar"

    @Flag(name: .long, help: "Decide as if audit mode were off (what switching it off would do).")
    var enforce = false

    @Option(name: .long, help: ArgumentHelp("List at most N newly denied destinations.", valueName: "N"))
    var top: Int = 50

    @OptionGroup var workload: WorkloadOptions

    @Argument(help: ArgumentHelp("Access-log files; - reads stdin.", valueName: "log"))
    var logs: [String] = []

    func validate() throws {
        if logs.isEmpty { throw ValidationError("name at least one access-log file, or - for stdin") }
        guard ProxyRole(rawValue: role) != nil else { throw ValidationError("--role must be sidecar or gateway, got \(role)") }
        if top < 0 { throw ValidationError("--top must not be negative") }
    }

    func run() throws {
        let path = try resolveConfigPath(config)
        let snapshot = try loadSnapshot(configPath: path, namespace: workload.resolvedNamespace, identity: try workload.resolvedIdentity())
        var policy = snapshot.policy(role: ProxyRole(rawValue: role) ?? .sidecar)
        if enforce || policy.audit {
            let routes = policy.routes
            policy = Policy(mode: policy.mode, registry: policy.registry, gateway: policy.gateway, role: policy.role,
                            audit: enforce ? false : policy.audit)
            policy.routes = routes
        }
        if policy.mode == .allowAny {
            printError("sluice replay: note: \(path) is ALLOW_ANY, which allows everything; replay decides as its mode says")
        }
        let reader = AccessLogLineReader()
        var summary = ReplaySummary()
        var skipped: [SkippedLogLine: Int] = [:]
        for log in logs {
            var splitter = LogLineSplitter()
            let line: (UnsafeRawBufferPointer) -> Void = { line in
                switch reader.read(line) {
                case .success(let logged): summary.add(logged, policy.decide(logged))
                case .failure(let reason): skipped[reason, default: 0] += 1
                case nil: break
                }
            }
            do {
                try LogInput.read(log) { splitter.feed($0, line: line) }
            } catch {
                printError("sluice replay: \(error)")
                throw ExitCode(1)
            }
            splitter.finish(line: line)
            if splitter.overlongLines > 0 { skipped[.overlong, default: 0] += splitter.overlongLines }
        }
        print("config: \(path) (\(policy.role.rawValue), \(policy.mode.rawValue)\(policy.audit ? ", audit" : ""))")
        for line in summary.report(limit: top) { print(line) }
        for (reason, count) in skipped.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            printError("sluice replay: skipped \(count) line(s): \(reason.rawValue)")
        }
    }
}
