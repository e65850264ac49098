import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceIdentity
import SluiceProxy

/// `--certs DIR`: the workload's mesh certificates in Istio's file-mounted layout; and
/// `--credentials-dir DIR`: the Secrets a DestinationRule's `credentialName` names.
struct CertsOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Mesh certificates (cert-chain.pem, key.pem, root-cert.pem). Also SLUICE_CERTS_DIR; default /etc/certs. Required when a listener or egressGateway has tls ISTIO_MUTUAL; loaded if present for a DestinationRule's ISTIO_MUTUAL.",
        valueName: "dir"))
    var certs: String?

    @Option(name: .long, help: ArgumentHelp(
        "Where a DestinationRule or Gateway tls credentialName NAME is read: DIR/NAME/tls.crt, tls.key, ca.crt (a kubernetes.io/tls Secret's keys) or cert, key, cacert. Also SLUICE_CREDENTIALS_DIR; default /etc/sluice/credentials.",
        valueName: "dir"))
    var credentialsDir: String?

    /// `--credentials-dir`, else `SLUICE_CREDENTIALS_DIR`, else `/etc/sluice/credentials`.
    var resolvedCredentialsDirectory: String {
        if let credentialsDir, !credentialsDir.isEmpty { return credentialsDir }
        if let env = ProcessEnvironment.value("SLUICE_CREDENTIALS_DIR"), !env.isEmpty { return env }
        return "/etc/sluice/credentials"
    }

    /// `--certs`, else `SLUICE_CERTS_DIR`, else `/etc/certs` (where Istio mounts them).
    var resolvedDirectory: String {
        if let certs, !certs.isEmpty { return certs }
        if let env = ProcessEnvironment.value("SLUICE_CERTS_DIR"), !env.isEmpty { return env }
        return "/etc/certs"
    }

    /// The certificate store for `config`: loaded and required when the config asks for
    /// mutual TLS (an unusable directory then stops the start with the reason); loaded if
    /// present otherwise, so a reload that turns mTLS on finds it.
    func store(for config: SluiceConfig, role: ProxyRole, logger: Logger) throws -> CertificateStore? {
        let directory = self.resolvedDirectory
        let needed =
            role == .gateway
            ? config.listeners.contains { $0.tls == .istioMutual }
            : config.egressGateway?.tls != nil
        do {
            let store = try CertificateStore(directory: directory)
            let identity = store.credentials.identity
            logger.info(
                "mesh certificate loaded",
                metadata: [
                    "directory": "\(directory)", "spiffe": "\(identity.spiffeID)", "serial": "\(identity.serialHex)",
                    "notAfter": "\(identity.leaf.notValidAfter)",
                ])
            return store
        } catch {
            if needed {
                printError("sluice: --certs \(directory): \(error)")
                throw ExitCode(1)
            }
            if FileManager.default.fileExists(atPath: directory) {
                logger.notice("mesh certificates not loaded (not needed by this config)", metadata: ["reason": "\(error)"])
            }
            return nil
        }
    }
}
