import Foundation
import Logging
public import ServiceLifecycle

/// Re-reads the `--certs` files when they change (a Secret volume's `..data` swap,
/// cert-manager or istio-agent writing new files): polled like `ConfigWatcher`, so the
/// symlink swap is seen. New connections use the new certificate; open ones keep theirs.
/// Invalid new files keep the old certificate, logged and counted.
public final class CertificateWatcher: Service, Sendable {
    private let store: CertificateStore
    private let runtime: ProxyRuntime
    private let interval: Duration

    /// - Parameter interval: how often to look (a change applies after two looks).
    public init(store: CertificateStore, runtime: ProxyRuntime, interval: Duration = .milliseconds(500)) {
        self.store = store
        self.runtime = runtime
        self.interval = interval
    }

    /// Watches until graceful shutdown.
    public func run() async throws {
        var settled: [String]?
        self.runtime.identityMetrics?.inForce(self.store.credentials.identity)
        while !Task.isCancelledOrShuttingDown {
            do {
                try await Task.sleep(for: self.interval)
            } catch {
                return
            }
            self.look(settled: &settled)
        }
    }

    /// One look at the files; logs and counts what it finds.
    func look(settled: inout [String]?) {
        let logger = self.runtime.logger
        switch self.store.reloadIfChanged(settled: &settled, now: Date()) {
        case .unchanged:
            break
        case .rotated(let old, let new):
            self.runtime.identityMetrics?.rotation(success: true)
            self.runtime.identityMetrics?.inForce(new.identity)
            logger.notice(
                "certificate rotated",
                metadata: [
                    "spiffe": "\(new.identity.spiffeID)", "serial": "\(new.identity.serialHex)",
                    "previousSerial": "\(old.identity.serialHex)", "notAfter": "\(new.identity.leaf.notValidAfter)",
                ])
        case .rejected(let kept, let reason):
            self.runtime.identityMetrics?.rotation(success: false)
            logger.error(
                "certificate reload rejected; keeping the certificate in force",
                metadata: ["directory": "\(self.store.directory)", "reason": "\(reason)", "serial": "\(kept.identity.serialHex)"])
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Cancelled, or the service group is shutting down.
    fileprivate static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
