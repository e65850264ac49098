public import NIOCore
import NIOHTTP1
import NIOPosix
public import NIOSSL
public import SluiceInject

/// `sluice injector`'s HTTPS server: the Kubernetes API server POSTs AdmissionReviews to
/// `/inject` and gets the review back with a JSONPatch; `/healthz/ready` is the probe.
public enum InjectorServer {
    /// The server's TLS configuration, loaded once at start.
    public typealias TLSContext = NIOSSLContext

    /// Where the MutatingWebhookConfiguration sends AdmissionReviews.
    public static let injectPath = "/inject"
    /// The readiness probe's path.
    public static let readyPath = "/healthz/ready"
    /// The largest request body accepted (a pod is a few KiB; the API server caps objects
    /// at 1.5 MiB).
    public static let maxBodyBytes = 4 << 20

    /// The server's TLS context from Istio's file-mounted names in `directory`:
    /// `cert-chain.pem` (the serving certificate first) and `key.pem`.
    public static func tlsContext(certsDirectory directory: String) throws -> NIOSSLContext {
        let chainPath = directory + "/cert-chain.pem"
        let keyPath = directory + "/key.pem"
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(chainPath)
        } catch {
            throw InjectorError("\(chainPath): cannot read the certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw InjectorError("\(chainPath): no certificate in the file") }
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw InjectorError("\(keyPath): cannot read the private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw InjectorError("\(directory): the certificate and key do not make a TLS context (\(error))")
        }
    }

    /// Binds the server; each connection gets TLS, HTTP/1.1 and an `InjectorHTTPHandler`.
    /// `group` defaults to NIO's shared event loops.
    public static func bind(
        host: String, port: Int, tls: NIOSSLContext, responder: AdmissionReviewResponder,
        group: (any EventLoopGroup)? = nil, log: @escaping @Sendable (String) -> Void
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group ?? MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(InjectorHTTPHandler(responder: responder, log: log))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

/// A problem the operator must fix (a missing certificate), said in one line.
public struct InjectorError: Error, CustomStringConvertible {
    /// The line.
    public let description: String

    init(_ description: String) { self.description = description }
}
