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
    /// first read, and NIOSSL reads on while a read brought no plaintext. `http2`: the
    /// connection carries HTTP/2, offered with ALPN `h2` (Istio's `ALPNH2Only`).
    static func handshake(on channel: any Channel, origin: OriginTLS, contexts: FileTLSContexts, http2: Bool = false, timeout: TimeAmount? = nil) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        do {
            let context = try contexts.context(for: origin, http2: http2)
            let tls = try NIOSSLClientHandler(context: context, serverHostname: origin.sni)
            let waiter = TLSHandshakeWaiter(
                promise: promise,
                verify: { context in Self.refusal(of: origin, context: context) },
                failure: { error in .originTLSFailed(entries: TLSHandshakeWaiter.envoyEntries(error), detail: "\(error)") },
                closed: .originTLSFailed(entries: [], detail: "the origin closed the connection during the TLS handshake"),
                timeout: timeout)
            try channel.pipeline.syncOperations.addHandlers([tls, waiter])
        } catch let error as FileTLSSetupError {
            promise.fail(UpstreamError.originTLSFailed(entries: [error.description], detail: error.description))
        } catch {
            promise.fail(UpstreamError.originTLSFailed(entries: TLSHandshakeWaiter.envoyEntries(error), detail: "\(error)"))
        }
        return promise.futureResult
    }
}

extension OriginTLSClient {
    /// After the handshake: why the server's certificate is refused by the setting's
    /// `subjectAltNames` (BoringSSL checked the chain and, when asked, the host name), or nil.
    static func refusal(of origin: OriginTLS, context: ChannelHandlerContext) -> UpstreamError? {
        guard !origin.subjectAltNames.isEmpty else { return nil }
        let names = Self.subjectAltNames(try? context.pipeline.syncOperations.nioSSL_peerCertificate())
        guard !origin.accepts(dnsNames: names.dns, uris: names.uri, ipAddresses: names.ip) else { return nil }
        let presented = (names.dns + names.uri + names.ip).joined(separator: ", ")
        return .originTLSFailed(
            entries: [EnvoyTLSFailure.certificateVerifyFailed],
            detail: "the server's certificate names [\(presented)], none of subjectAltNames [\(origin.subjectAltNames.joined(separator: ", "))]")
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
