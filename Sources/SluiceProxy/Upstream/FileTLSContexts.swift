import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SluiceCore

/// BoringSSL contexts built from certificate files named in configuration: TLS origination
/// (DestinationRule `tls` SIMPLE / MUTUAL: `caCertificates`, `clientCertificate`/`privateKey`)
/// and Gateway servers with `tls.mode` SIMPLE / MUTUAL (`serverCertificate`, `privateKey`,
/// `caCertificates`), or a `credentialName`'s directory under `--credentials-dir`. A context
/// is reused while its files are unchanged; a changed file (a Secret updated in place) builds
/// a new one for the next connection, and open connections keep theirs.
final class FileTLSContexts: Sendable {
    /// `--credentials-dir`: where `credentialName: NAME` is read (`NAME/tls.crt` …).
    let credentialsDirectory: String?
    private let cache = NIOLockedValueBox<[Key: NIOSSLContext]>([:])

    private enum Key: Hashable {
        case origin(OriginTLS, http2: Bool, fingerprint: [String])
        case server(ServerTLSFiles, ServerTLSMode, fingerprint: [String])
    }

    /// The files a context is built from.
    struct Files {
        var ca: String?
        var certificate: String?
        var key: String?

        var paths: [String] { [ca, certificate, key].compactMap { $0 } }
    }

    init(credentialsDirectory: String?) {
        self.credentialsDirectory = credentialsDirectory
    }

    /// The client context for `origin`, built (or rebuilt after a file changed) as needed;
    /// offering ALPN `h2` when the connection carries HTTP/2.
    func context(for origin: OriginTLS, http2: Bool = false) throws -> NIOSSLContext {
        let files = try self.files(for: origin)
        return try self.cached(.origin(origin, http2: http2, fingerprint: ConfigWatcher.fingerprint(files.paths))) {
            var configuration = try Self.clientConfiguration(origin, files: files)
            if http2 { configuration.applicationProtocols = ALPN.http2Only }
            return configuration
        }
    }

    /// The server context of a Gateway server with `mode` SIMPLE or MUTUAL.
    func serverContext(_ serverFiles: ServerTLSFiles, mode: ServerTLSMode) throws -> NIOSSLContext {
        var files = Files(ca: serverFiles.caCertificates, certificate: serverFiles.serverCertificate, key: serverFiles.privateKey)
        if let name = serverFiles.credentialName {
            let found = try self.credential(name)
            files = Files(ca: files.ca ?? found.ca, certificate: files.certificate ?? found.certificate, key: files.key ?? found.key)
        }
        guard let certificate = files.certificate, let key = files.key else {
            throw FileTLSSetupError("\(mode.rawValue) server without a certificate and key" + (serverFiles.credentialName.map { " (none in the credential \($0))" } ?? ""))
        }
        if mode == .mutual, files.ca == nil {
            throw FileTLSSetupError("MUTUAL server without caCertificates (or ca.crt in its credential) to verify clients against")
        }
        return try self.cached(.server(serverFiles, mode, fingerprint: ConfigWatcher.fingerprint(files.paths))) {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try Self.read(certificate) { try NIOSSLCertificate.fromPEMFile($0) }.map { .certificate($0) },
                privateKey: .privateKey(try Self.read(key) { try NIOSSLPrivateKey(file: $0, format: .pem) }))
            configuration.minimumTLSVersion = .tlsv12
            configuration.shutdownTimeout = .seconds(1)
            // As Envoy's HTTPS gateway servers (and the ISTIO_MUTUAL listener): an HTTP/2 client
            // negotiates h2, and the listener's sniffer hands its preface to the HTTP/2 relay.
            configuration.applicationProtocols = ALPN.serverHTTP
            if let version = serverFiles.minProtocolVersion.flatMap(Self.tlsVersion) { configuration.minimumTLSVersion = version }
            if let version = serverFiles.maxProtocolVersion.flatMap(Self.tlsVersion) { configuration.maximumTLSVersion = version }
            if !serverFiles.cipherSuites.isEmpty { configuration.cipherSuites = serverFiles.cipherSuites.joined(separator: ":") }
            if mode == .mutual, let ca = files.ca {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .certificates(try Self.read(ca) { try NIOSSLCertificate.fromPEMFile($0) })
            }
            return configuration
        }
    }

    /// Istio's `TLSProtocol` name as BoringSSL's version.
    static func tlsVersion(_ name: String) -> TLSVersion? {
        switch name {
        case "TLSV1_0": return .tlsv1
        case "TLSV1_1": return .tlsv11
        case "TLSV1_2": return .tlsv12
        case "TLSV1_3": return .tlsv13
        default: return nil
        }
    }

    private func cached(_ key: Key, _ configuration: () throws -> TLSConfiguration) throws -> NIOSSLContext {
        if let cached = self.cache.withLockedValue({ $0[key] }) { return cached }
        let context = try NIOSSLContext(configuration: configuration())
        self.cache.withLockedValue { cache in
            // Settings come from configuration, so the set stays small; a long run of edits
            // (or rotated files) starts it afresh rather than growing without bound.
            if cache.count >= 64 { cache.removeAll() }
            cache[key] = context
        }
        return context
    }

    /// The files in use for origination: the setting's own, else the credential's.
    func files(for origin: OriginTLS) throws -> Files {
        var files = Files(ca: origin.caCertificates, certificate: origin.clientCertificate, key: origin.privateKey)
        if let name = origin.credentialName {
            let found = try self.credential(name)
            files.ca = files.ca ?? found.ca
            if origin.mode == .mutual {
                files.certificate = files.certificate ?? found.certificate
                files.key = files.key ?? found.key
            }
        }
        if origin.mode == .mutual, files.certificate == nil || files.key == nil {
            throw FileTLSSetupError("MUTUAL without a client certificate and key"
                + (origin.credentialName.map { " (no tls.crt/tls.key or cert/key in \(self.credentialsDirectory ?? "-")/\($0))" } ?? ""))
        }
        return files
    }

    private func credential(_ name: String) throws -> Files {
        guard let directory = self.credentialsDirectory else {
            throw FileTLSSetupError("credentialName \(name) needs --credentials-dir")
        }
        let found = OriginTLS.credentialFiles(directory: directory, name: name) { FileManager.default.fileExists(atPath: $0) }
        return Files(ca: found.ca, certificate: found.certificate, key: found.key)
    }

    /// Istio's client TLS as BoringSSL settings: the CA file or the system roots, hostname
    /// verification when the certificate must name the SNI, none under insecureSkipVerify.
    static func clientConfiguration(_ origin: OriginTLS, files: Files) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.shutdownTimeout = .seconds(1)
        if !origin.verifyCertificate {
            configuration.certificateVerification = .none
        } else {
            configuration.certificateVerification = origin.verifyHostname ? .fullVerification : .noHostnameVerification
            if let ca = files.ca {
                configuration.trustRoots = .certificates(try Self.read(ca) { try NIOSSLCertificate.fromPEMFile($0) })
            }
        }
        if let certificate = files.certificate, let key = files.key {
            configuration.certificateChain = try Self.read(certificate) { try NIOSSLCertificate.fromPEMFile($0) }.map { .certificate($0) }
            configuration.privateKey = .privateKey(try Self.read(key) { try NIOSSLPrivateKey(file: $0, format: .pem) })
        }
        return configuration
    }

    private static func read<T>(_ path: String, _ load: (String) throws -> T) throws -> T {
        do {
            return try load(path)
        } catch {
            throw FileTLSSetupError("\(path): cannot be read as PEM (\(error))")
        }
    }
}

/// A TLS setting whose files cannot be turned into a context (a missing file, no
/// `--credentials-dir`): origination answers 503 with the reason; a Gateway server closes
/// the connection and logs it.
struct FileTLSSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
