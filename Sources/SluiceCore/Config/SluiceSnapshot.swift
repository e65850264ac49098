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

    /// Creates a snapshot from parts already loaded.
    public init(config: SluiceConfig, registry: Registry, diagnostics: [ConfigDiagnostic] = []) {
        self.config = config
        self.registry = registry
        self.diagnostics = diagnostics
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
        let base = ConfigPath.directory(of: ConfigPath.resolve(configPath, relativeTo: FileManager.default.currentDirectoryPath))
        let loaded = RegistryLoader.load(paths: config.registryPaths, relativeTo: base)
        if loaded.hasErrors { return .failure(ConfigDiagnostics(loaded.diagnostics)) }
        let registry = Registry(loaded.entries)
        return .success(SluiceSnapshot(config: config, registry: registry, diagnostics: loaded.diagnostics + registry.conflicts))
    }
}
