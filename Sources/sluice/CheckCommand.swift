import ArgumentParser
import SluiceCore

/// `sluice check`: validates a config and its registry.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the config and its ServiceEntry registry; exit 0 if valid, 1 if not.",
        discussion: "Each problem is printed as `path:line: message`."
    )

    @Option(name: .long, help: ArgumentHelp("Config file. Also from SLUICE_CONFIG.", valueName: "file"))
    var config: String?

    func run() throws {
        let path = try resolveConfigPath(config)
        switch SluiceSnapshot.load(configPath: path) {
        case .success(let snapshot):
            for diagnostic in snapshot.diagnostics { print("\(diagnostic)") }
            print("\(path): ok: \(snapshot.registry.entries.count) ServiceEntries")
        case .failure(let diagnostics):
            for diagnostic in diagnostics { printError("\(diagnostic)") }
            throw ExitCode(1)
        }
    }
}
