#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers
public import ServiceLifecycle
import SluiceCore
import UnixSignals

/// Applies config and registry changes while running: polls the files the current snapshot
/// came from (every `interval`; a change is applied once it has been stable for one interval,
/// so it is live within about a second) and reloads at once on SIGHUP. Files that never stop
/// changing are applied anyway `maxDelay` after the first unapplied change, as Istio's
/// debounce (`PILOT_DEBOUNCE_MAX`, 10 s) bounds the wait. A change is applied atomically — new
/// connections and requests see the new registry, those in flight keep their decision. An
/// invalid `sluice.yaml` keeps the last good configuration; an invalid registry object is
/// rejected on its own and keeps its last good version, while the rest applies. Each is
/// logged with `path:line` and counted.
///
/// Polling `stat` instead of inotify is deliberate: Kubernetes ConfigMap volumes update by
/// swapping a `..data` symlink, which inotify on the file itself misses, while a fresh
/// `stat` through the symlink sees the new inode.
public final class ConfigWatcher: Service, Sendable {
    private let configPath: String
    private let runtime: ProxyRuntime
    private let interval: Duration
    private let maxDelay: Duration
    private let forceAudit: Bool
    private let forceAutoAllocate: Bool

    /// - Parameters:
    ///   - configPath: the config file as given on the command line.
    ///   - interval: how often to look for changes.
    ///   - maxDelay: the longest a change waits for the files to settle.
    ///   - forceAudit: `--audit`: every configuration applied keeps audit mode on.
    ///   - forceAutoAllocate: `SLUICE_DNS_AUTO_ALLOCATE`: every one keeps `dns.autoAllocate` on.
    public init(
        configPath: String, runtime: ProxyRuntime, interval: Duration = .milliseconds(500), maxDelay: Duration = .seconds(10),
        forceAudit: Bool = false, forceAutoAllocate: Bool = false
    ) {
        self.configPath = configPath
        self.runtime = runtime
        self.interval = interval
        self.maxDelay = maxDelay
        self.forceAudit = forceAudit
        self.forceAutoAllocate = forceAutoAllocate
    }

    /// Watches until graceful shutdown.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let state = NIOLockedValueBox(Self.fingerprint(self.runtime.config.snapshot.watchedPaths))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() {
                    self.reload(reason: "SIGHUP", state: state)
                }
            }
            group.addTask {
                // A change is applied once the files have stayed the same for one interval:
                // an editor or `cp` still writing a file must not get half of it loaded.
                var settling: [String]?
                var firstChange: ContinuousClock.Instant?
                let clock = ContinuousClock()
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: self.interval)
                    } catch {
                        return
                    }
                    self.runtime.metrics.accessLogDropped(self.runtime.accessLogDropped)
                    let now = Self.fingerprint(self.runtime.config.snapshot.watchedPaths)
                    guard now != state.withLockedValue({ $0 }) else {
                        settling = nil
                        firstChange = nil
                        continue
                    }
                    let since = firstChange ?? clock.now
                    firstChange = since
                    if now == settling {
                        settling = nil
                        firstChange = nil
                        self.reload(reason: "file change", state: state)
                    } else if clock.now - since >= self.maxDelay {
                        settling = nil
                        firstChange = nil
                        self.reload(reason: "files still changing after \(self.maxDelay)", state: state)
                    } else {
                        settling = now
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    /// Loads the config and registry again; applies them if valid.
    func reload(reason: String, state: NIOLockedValueBox<[String]>) {
        let logger = self.runtime.logger
        let old = self.runtime.config
        switch SluiceSnapshot.load(configPath: self.configPath, namespace: old.snapshot.namespace, previous: old.snapshot) {
        case .success(let snapshot):
            self.runtime.update(ActiveConfig(
                snapshot: snapshot, role: self.runtime.role, forceAudit: self.forceAudit, forceAutoAllocate: self.forceAutoAllocate,
                names: old.names))
            self.runtime.metrics.configReloaded(success: true)
            self.runtime.metrics.registrySize(snapshot.registry.entries.count)
            self.runtime.metrics.registryRejected(snapshot.rejectedObjects)
            state.withLockedValue { $0 = Self.fingerprint(snapshot.watchedPaths) }
            let rejected = snapshot.rejectedObjects > 0 ? "; \(snapshot.rejectedObjects) rejected" : ""
            logger.notice(
                "config reloaded (\(reason)): \(snapshot.registry.entries.count) ServiceEntries, was \(old.snapshot.registry.entries.count)\(rejected)"
            )
            for diagnostic in snapshot.diagnostics {
                if diagnostic.isError { logger.error("\(diagnostic)") } else { logger.notice("\(diagnostic)") }
            }
            if snapshot.config.listeners != old.snapshot.config.listeners
                || snapshot.config.accessLog != old.snapshot.config.accessLog
            {
                logger.warning("listeners and accessLog changes take effect on restart; the running ones are kept")
            }
        case .failure(let diagnostics):
            // Remember what we saw, so one bad edit is reported once, not every poll.
            state.withLockedValue { $0 = Self.fingerprint(old.snapshot.watchedPaths) }
            self.runtime.metrics.configReloaded(success: false)
            logger.error("config reload (\(reason)) rejected; keeping the last good configuration")
            for diagnostic in diagnostics { logger.error("\(diagnostic)") }
        }
    }

    /// Identity and version of every watched path (following symlinks), and for a directory,
    /// of every entry in it.
    static func fingerprint(_ paths: [String]) -> [String] {
        var out: [String] = []
        for path in paths {
            out.append(Self.stamp(path))
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
                for entry in entries.sorted() where !entry.hasPrefix(".") {
                    out.append(Self.stamp(path + "/" + entry))
                }
            }
        }
        return out
    }

    private static func stamp(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "\(path):missing" }
        return "\(path):\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }
}
