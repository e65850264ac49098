import NIOCore
import NIOSSL
import NIOTLS
import SluiceCore
import SluiceIdentity

/// Opens ISTIO_MUTUAL on a fresh connection to the egress gateway: presents the workload
/// certificate, checks that the gateway's certificate chains to the mesh root and names one
/// of the expected SPIFFE IDs, and succeeds once the handshake is done. The channel then
/// carries the sidecar's plaintext (HTTP, or the app's own TLS passed through) inside mTLS.
enum MeshTLSClient {
    /// Adds the TLS client to `channel` (connected, `autoRead` off) and completes when the
    /// handshake has finished. The waiter issues the first read; NIOSSL reads again while a
    /// read brought no plaintext, so the handshake runs with `autoRead` still off. `http2`:
    /// the connection carries HTTP/2, announced with Istio's in-mesh ALPN (`istio`, `h2`).
    static func handshake(
        on channel: any Channel,
        credentials: MeshCredentials,
        settings: GatewayClientTLS,
        serverName: String,
        http2: Bool = false,
        timeout: TimeAmount? = nil
    ) -> EventLoopFuture<Void> {
        let identity = credentials.identity
        let verifier = PeerChainVerifier(
            roots: identity.roots, trustDomain: identity.spiffeID.trustDomain, expectedIdentities: settings.subjectAltNames)
        let peer = PeerVerification()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        do {
            // An IP address is not a valid SNI; BoringSSL refuses to send one.
            let sni = IPAddress(settings.sni ?? serverName) == nil ? settings.sni ?? serverName : nil
            let tls = try NIOSSLClientHandler(
                context: http2 ? credentials.h2ClientContext : credentials.clientContext, serverHostname: sni, customVerificationCallback: peer.callback(verifier))
            let waiter = TLSHandshakeWaiter(
                promise: promise,
                failure: { error in
                    // A refused gateway certificate is what Envoy reports as CERTIFICATE_VERIFY_FAILED.
                    peer.failure.map { .tlsFailed(entries: [EnvoyTLSFailure.certificateVerifyFailed], detail: "gateway certificate refused: \($0.rawValue)") }
                        ?? .tlsFailed(entries: TLSHandshakeWaiter.envoyEntries(error), detail: "\(error)")
                },
                closed: .tlsFailed(entries: [], detail: "connection closed during the handshake"),
                timeout: timeout)
            let sync = channel.pipeline.syncOperations
            try sync.addHandlers([tls, waiter])
        } catch {
            promise.fail(UpstreamError.tlsFailed(entries: TLSHandshakeWaiter.envoyEntries(error), detail: "\(error)"))
        }
        return promise.futureResult
    }
}
