import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SluiceCore
import SluiceIdentity
import X509

/// `sluice certs`: a mesh root and workload certificates in Istio's file layout, for demos
/// and tests (production meshes get theirs from istiod, cert-manager or a CA of their own).
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Issue a mesh root CA and SPIFFE workload certificates (Istio's file layout).",
        discussion: """
            sluice certs root --out ca/ writes root-cert.pem and root-key.pem. \
            sluice certs issue --root ca/ --namespace NS --service-account SA --out DIR writes \
            cert-chain.pem, key.pem and root-cert.pem: what --certs DIR reads. Keys are ECDSA P-256.
            """,
        subcommands: [CertsRootCommand.self, CertsIssueCommand.self]
    )
}

/// `sluice certs root`.
struct CertsRootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "root", abstract: "Create a self-signed mesh root: root-cert.pem and root-key.pem in --out.")

    @Option(name: .long, help: ArgumentHelp("Directory to write (created if missing).", valueName: "dir"))
    var out: String

    @Option(name: .customLong("trust-domain"), help: "The mesh's trust domain.")
    var trustDomain: String = SPIFFEID.defaultTrustDomain

    @Option(name: .long, help: "Days the root is valid.")
    var days: Int = 3650

    func validate() throws {
        guard days > 0 else { throw ValidationError("--days must be positive") }
    }

    func run() throws {
        let root = try MeshCertificateAuthority.makeRoot(trustDomain: trustDomain, now: Date(), days: days)
        try CertificateFiles.write(root.certificatePEM, to: out, IstioCertificateFiles.root)
        try CertificateFiles.write(root.privateKeyPEM, to: out, IstioCertificateFiles.rootKey, secret: true)
        print("root \(WorkloadCertificate.hex(root.certificate.serialNumber)) for \(trustDomain) in \(out)")
    }
}

/// `sluice certs issue`.
struct CertsIssueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue a workload certificate for spiffe://<trust-domain>/ns/<ns>/sa/<sa> into --out.")

    @Option(name: .long, help: ArgumentHelp("Directory with root-cert.pem and root-key.pem (from certs root).", valueName: "dir"))
    var root: String

    @Option(name: .long, help: "The workload's namespace.")
    var namespace: String

    @Option(name: .customLong("service-account"), help: "The workload's service account.")
    var serviceAccount: String

    @Option(name: .customLong("trust-domain"), help: "Trust domain of the SPIFFE ID.")
    var trustDomain: String = SPIFFEID.defaultTrustDomain

    @Option(name: .long, help: ArgumentHelp("Extra DNS SAN (a gateway's Service name); repeatable.", valueName: "name"))
    var dns: [String] = []

    @Option(name: .long, help: "Days the certificate is valid (--days=-1: already expired, for tests).")
    var days: Int = 90

    @Option(name: .long, help: ArgumentHelp("Directory to write: cert-chain.pem, key.pem, root-cert.pem.", valueName: "dir"))
    var out: String

    func validate() throws {
        guard days != 0 else { throw ValidationError("--days must not be 0") }
        for name in dns
        where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.*".contains($0)) }) {
            throw ValidationError("--dns \(name): not a DNS name")
        }
    }

    func run() throws {
        let identity = SPIFFEID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        do {
            _ = try SPIFFEID(parsing: identity.description)
        } catch {
            throw ValidationError("\(identity): \(error)")
        }
        let rootPEM = try CertificateFiles.read(root, IstioCertificateFiles.root)
        let rootCertificate = try WorkloadCertificate.certificates(rootPEM, file: IstioCertificateFiles.root)[0]
        let rootKey = try Certificate.PrivateKey(pemEncoded: CertificateFiles.read(root, IstioCertificateFiles.rootKey))
        guard rootKey.publicKey == rootCertificate.publicKey else {
            throw ValidationError("\(root): root-key.pem does not belong to root-cert.pem")
        }
        let issued = try MeshCertificateAuthority.issue(
            identity: identity, dnsNames: dns, root: rootCertificate, rootKey: rootKey, now: Date(), days: days)
        // Key first: a watcher that sees the new certificate must find its key already there.
        try CertificateFiles.write(issued.privateKeyPEM, to: out, IstioCertificateFiles.privateKey, secret: true)
        try CertificateFiles.write(issued.certificatePEM, to: out, IstioCertificateFiles.certificateChain)
        try CertificateFiles.write(rootPEM, to: out, IstioCertificateFiles.root)
        print("\(identity) serial \(WorkloadCertificate.hex(issued.certificate.serialNumber)) in \(out)")
    }
}

/// Reading and writing the PEM files.
enum CertificateFiles {
    static func read(_ directory: String, _ name: String) throws -> String {
        let path = (directory as NSString).appendingPathComponent(name)
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("\(path): cannot be read")
        }
    }

    /// Writes atomically (a temporary file renamed over the old one), keys mode 0600.
    static func write(_ text: String, to directory: String, _ name: String, secret: Bool = false) throws {
        // A PEM file ends with a line break (as openssl writes them), so that `cat cert-chain.pem
        // key.pem > bundle.pem`, the form HAProxy and nginx take, gives well-formed PEM.
        let text = text.hasSuffix("\n") ? text : text + "\n"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(name)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(
            atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: secret ? 0o600 : 0o644])
        else {
            throw ValidationError("\(temporary): cannot be written")
        }
        guard rename(temporary, path) == 0 else { throw ValidationError("\(path): cannot be replaced") }
    }
}
