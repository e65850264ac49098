import Foundation
import Prometheus
import SluiceIdentity

/// Metrics of the mesh identity: handshake failures by reason, certificate rotations, and
/// when the certificates in force expire. Registered only when `--certs` is in use.
final class IdentityMetrics: Sendable {
    /// Counter: mTLS handshakes refused or failed, by `reason`.
    static let handshakeFailures = "sluice_tls_handshake_failures_total"
    /// Counter: certificate reloads, by `result` (`success` / `failure`).
    static let rotations = "sluice_certificate_rotations_total"
    /// Gauge: Unix time at which the certificate expires, by `certificate` (`workload` / `root`).
    static let expiry = "sluice_certificate_expiry_seconds"

    /// The `reason` values besides `PeerVerificationFailure`'s: the handshake failed for
    /// another reason (not TLS, no shared cipher, closed mid-way…) or took too long, or no
    /// Gateway server on a port whose servers differ in TLS covers the ClientHello's SNI.
    static let otherReasons = ["handshake", "timeout", noServer]
    static let noServer = "no_server"

    private let failures: [String: Counter]
    private let rotated: Counter
    private let rotationFailed: Counter
    private let workloadExpiry: Gauge
    private let rootExpiry: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        let failureHelp = descriptor(Self.handshakeFailures, "mTLS handshakes that failed, by reason.")
        var failures: [String: Counter] = [:]
        for reason in PeerVerificationFailure.allCases.map(\.rawValue) + Self.otherReasons {
            failures[reason] = registry.makeCounter(descriptor: failureHelp, labels: [("reason", reason)])
        }
        self.failures = failures
        let rotationHelp = descriptor(Self.rotations, "Certificate reloads from --certs, by result.")
        self.rotated = registry.makeCounter(descriptor: rotationHelp, labels: [("result", "success")])
        self.rotationFailed = registry.makeCounter(descriptor: rotationHelp, labels: [("result", "failure")])
        let expiryHelp = descriptor(Self.expiry, "Unix time at which the certificate in force expires.")
        self.workloadExpiry = registry.makeGauge(descriptor: expiryHelp, labels: [("certificate", "workload")])
        self.rootExpiry = registry.makeGauge(descriptor: expiryHelp, labels: [("certificate", "root")])
    }

    /// A handshake failed; `reason` is one of the label values above.
    func handshakeFailed(reason: String) {
        (self.failures[reason] ?? self.failures["handshake"])?.increment()
    }

    /// A reload of the certificate files was applied (`true`) or rejected.
    func rotation(success: Bool) {
        (success ? self.rotated : self.rotationFailed).increment()
    }

    /// The certificates now in force.
    func inForce(_ identity: WorkloadCertificate) {
        self.workloadExpiry.set(identity.leaf.notValidAfter.timeIntervalSince1970)
        let rootExpiry = identity.roots.map(\.notValidAfter).min() ?? identity.leaf.notValidAfter
        self.rootExpiry.set(rootExpiry.timeIntervalSince1970)
    }
}
