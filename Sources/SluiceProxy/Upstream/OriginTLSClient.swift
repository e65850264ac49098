import NIOCore
import NIOSSL
import NIOTLS
import SluiceCore
import X509

/// Opens TLS origination (DestinationRule `tls.mode: SIMPLE` / `MUTUAL`) on a fresh
/// connection: the app sent plaintext, the origin gets TLS. Completes when the handshake is
/// done and the server's certificate passed every check the setting asks for; fails with
/// `UpstreamError.originTLSFailed` worded as Envoy's `upstream_transport_failure_reason`.
enum OriginTLSClient {
    /// Adds the TLS client to `channel` (connected, `autoRead` off); the waiter issues the
    /// first read, and NIOSSL reads on while a read brought no plaintext.
    static func handshake(on channel: any Channel, origin: OriginTLS, contexts: FileTLSContexts) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        do {
            let context = try contexts.context(for: origin)
            let tls = try NIOSSLClientHandler(context: context, serverHostname: origin.sni)
            try channel.pipeline.syncOperations.addHandlers([tls, OriginTLSHandshakeWaiter(origin: origin, promise: promise)])
        } catch let error as FileTLSSetupError {
            promise.fail(UpstreamError.originTLSFailed(entries: [error.description], detail: error.description))
        } catch {
            promise.fail(UpstreamError.originTLSFailed(entries: OriginTLSHandshakeWaiter.envoyEntries(error), detail: "\(error)"))
        }
        return promise.futureResult
    }
}

/// Waits for the handshake, checks the server's SANs against the setting's list, completes
/// the promise and leaves.
final class OriginTLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let origin: OriginTLS
    private let promise: EventLoopPromise<Void>
    private var done = false

    init(origin: OriginTLS, promise: EventLoopPromise<Void>) {
        self.origin = origin
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !self.done else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.done = true
        if !self.origin.subjectAltNames.isEmpty {
            let names = Self.subjectAltNames(try? context.pipeline.syncOperations.nioSSL_peerCertificate())
            guard self.origin.accepts(dnsNames: names.dns, uris: names.uri, ipAddresses: names.ip) else {
                let presented = (names.dns + names.uri + names.ip).joined(separator: ", ")
                self.promise.fail(UpstreamError.originTLSFailed(
                    entries: [EnvoyTLSFailure.certificateVerifyFailed],
                    detail: "the server's certificate names [\(presented)], none of subjectAltNames [\(self.origin.subjectAltNames.joined(separator: ", "))]"))
                context.close(promise: nil)
                return
            }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        self.promise.succeed(())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !self.done else {
            context.fireErrorCaught(error)
            return
        }
        self.done = true
        self.promise.fail(UpstreamError.originTLSFailed(entries: Self.envoyEntries(error), detail: "\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.done {
            self.done = true
            self.promise.fail(UpstreamError.originTLSFailed(entries: [], detail: "the origin closed the connection during the TLS handshake"))
        }
        context.fireChannelInactive()
    }

    /// Envoy's entries for a NIOSSL error: BoringSSL's error stack as Envoy prints it; a
    /// refused host name (NIOSSL checks it after BoringSSL's chain check, Envoy inside it)
    /// as the CERTIFICATE_VERIFY_FAILED Envoy reports.
    static func envoyEntries(_ error: any Error) -> [String] {
        switch error {
        case NIOSSLError.handshakeFailed(.sslError(let stack)), NIOSSLError.handshakeFailed(.unknownError(let stack)):
            let entries = stack.compactMap { EnvoyTLSFailure.entry(fromBoringSSL: "\($0)") }
            return entries.isEmpty ? ["\(error)"] : entries
        case let extra as NIOSSLExtraError where extra == .failedToValidateHostname:
            return [EnvoyTLSFailure.certificateVerifyFailed]
        default:
            return ["\(error)"]
        }
    }

    /// The DNS, URI and IP SANs of `certificate` (none when it cannot be read).
    static func subjectAltNames(_ certificate: NIOSSLCertificate?) -> (dns: [String], uri: [String], ip: [String]) {
        guard let certificate, let parsed = try? Certificate(derEncoded: certificate.toDERBytes()),
              let names = try? parsed.extensions.subjectAlternativeNames
        else { return ([], [], []) }
        var out: (dns: [String], uri: [String], ip: [String]) = ([], [], [])
        for name in names {
            switch name {
            case .dnsName(let dns): out.dns.append(dns)
            case .uniformResourceIdentifier(let uri): out.uri.append(uri)
            case .ipAddress(let bytes):
                let octets = Array(bytes.bytes)
                if let address = IPAddress(bytes: octets) { out.ip.append(address.description) }
            default: break
            }
        }
        return out
    }
}
