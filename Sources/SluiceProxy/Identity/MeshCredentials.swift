import Foundation
import NIOSSL
public import SluiceIdentity

/// One loaded `--certs` directory, ready for TLS: the checked identity and the BoringSSL
/// contexts built from it. Replaced whole on rotation; a connection keeps the one it
/// started with.
public final class MeshCredentials: Sendable {
    /// The checked certificate, key and roots.
    public let identity: WorkloadCertificate
    /// For listeners that terminate ISTIO_MUTUAL: presents the workload certificate and
    /// requires one from the client (checked by `PeerChainVerifier`).
    let serverContext: NIOSSLContext
    /// For the sidecar's connections to an ISTIO_MUTUAL gateway.
    let clientContext: NIOSSLContext
    /// The same, for a connection that carries HTTP/2: ALPN `istio`, `h2` (Istio's `ALPNInMeshH2`).
    let h2ClientContext: NIOSSLContext
    /// The files' identities when read (what the watcher compares).
    let fingerprint: [String]

    /// Reads and checks the three files in `directory` at `now`.
    static func load(directory: String, now: Date) throws -> MeshCredentials {
        let paths = MeshCredentials.paths(directory)
        let fingerprint = ConfigWatcher.fingerprint(paths)
        func read(_ path: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw CertificateStoreError.unreadable(path)
            }
        }
        let identity = try WorkloadCertificate(
            chainPEM: read(paths[0]), privateKeyPEM: read(paths[1]), rootPEM: read(paths[2]), now: now)
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(identity.chainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem)
        let roots = try NIOSSLCertificate.fromPEMBytes(Array(identity.rootPEM.utf8))

        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        // Required and checked: the custom verification callback replaces BoringSSL's chain
        // check with `PeerChainVerifier`, which can say why a certificate was refused.
        server.certificateVerification = .noHostnameVerification
        server.trustRoots = .certificates(roots)
        server.minimumTLSVersion = .tlsv12
        // On close, wait briefly for the peer's close_notify (NIOSSL's default is 5 s).
        server.shutdownTimeout = .seconds(1)
        // A client that offers `h2` speaks HTTP/2 inside (an HTTP listener tells it by the
        // preface either way); one that offers neither gets no ALPN, as before.
        server.applicationProtocols = ALPN.serverHTTP

        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain
        client.privateKey = .privateKey(key)
        client.certificateVerification = .noHostnameVerification
        client.trustRoots = .certificates(roots)
        client.minimumTLSVersion = .tlsv12
        client.shutdownTimeout = .seconds(1)

        var h2Client = client
        h2Client.applicationProtocols = ALPN.inMeshHTTP2

        return MeshCredentials(
            identity: identity,
            serverContext: try NIOSSLContext(configuration: server),
            clientContext: try NIOSSLContext(configuration: client),
            h2ClientContext: try NIOSSLContext(configuration: h2Client),
            fingerprint: fingerprint)
    }

    private init(
        identity: WorkloadCertificate, serverContext: NIOSSLContext, clientContext: NIOSSLContext, h2ClientContext: NIOSSLContext,
        fingerprint: [String]
    ) {
        self.identity = identity
        self.serverContext = serverContext
        self.clientContext = clientContext
        self.h2ClientContext = h2ClientContext
        self.fingerprint = fingerprint
    }

    /// The same credentials, remembered as read from files with `fingerprint` (a rejected
    /// rotation: the bad files are not looked at again until they change).
    func withFingerprint(_ fingerprint: [String]) -> MeshCredentials {
        MeshCredentials(
            identity: self.identity, serverContext: self.serverContext, clientContext: self.clientContext,
            h2ClientContext: self.h2ClientContext, fingerprint: fingerprint)
    }

    /// `cert-chain.pem`, `key.pem`, `root-cert.pem` in `directory`.
    static func paths(_ directory: String) -> [String] {
        [IstioCertificateFiles.certificateChain, IstioCertificateFiles.privateKey, IstioCertificateFiles.root].map {
            directory.hasSuffix("/") ? directory + $0 : directory + "/" + $0
        }
    }
}

/// A `--certs` directory that cannot be used.
public enum CertificateStoreError: Error, CustomStringConvertible {
    /// A file is missing or unreadable.
    case unreadable(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "\(path): cannot be read"
        }
    }
}
