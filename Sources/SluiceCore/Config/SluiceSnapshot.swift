import Foundation

/// A config and the registry it names, loaded together: the unit the proxy swaps atomically
/// when files change, so a request never sees a new config with an old registry.
public struct SluiceSnapshot: Sendable {
    /// The parsed `sluice.yaml`.
    public var config: SluiceConfig
    /// The registry built from `config.registryPaths`.
    public var registry: Registry
    /// Warnings and notes from loading (errors make the load fail instead).
    public var diagnostics: [ConfigDiagnostic]
    /// The config file, each configured registry path (directories included, since a new file
    /// may appear in one) and every registry file read: what a watcher should poll for changes.
    public var watchedPaths: [String]

    /// Creates a snapshot from parts already loaded.
    public init(config: SluiceConfig, registry: Registry, diagnostics: [ConfigDiagnostic] = [], watchedPaths: [String] = []) {
        self.config = config
        self.registry = registry
        self.diagnostics = diagnostics
        self.watchedPaths = watchedPaths
    }

    /// Loads the config at `configPath`, then every registry file it names. Any error in either
    /// fails the whole load (with every diagnostic, warnings included, in file order), so that a
    /// watcher keeps the last good snapshot.
    public static func load(configPath: String) -> Result<SluiceSnapshot, ConfigDiagnostics> {
        let config: SluiceConfig
        switch SluiceConfig.load(path: configPath) {
        case .success(let loaded): config = loaded
        case .failure(let diagnostics): return .failure(diagnostics)
        }
        let absoluteConfigPath = ConfigPath.resolve(configPath, relativeTo: FileManager.default.currentDirectoryPath)
        let base = ConfigPath.directory(of: absoluteConfigPath)
        let loaded = RegistryLoader.load(paths: config.registryPaths, relativeTo: base)
        if loaded.hasErrors { return .failure(ConfigDiagnostics(loaded.diagnostics)) }
        let registry = Registry(loaded.entries)
        var watched = [absoluteConfigPath]
        for path in config.registryPaths.map({ ConfigPath.resolve($0, relativeTo: base) }) + loaded.files
        where !watched.contains(path) {
            watched.append(path)
        }
        return .success(SluiceSnapshot(
            config: config, registry: registry, diagnostics: loaded.diagnostics + registry.conflicts, watchedPaths: watched))
    }
}
