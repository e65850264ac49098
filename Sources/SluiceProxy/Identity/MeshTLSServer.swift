import Logging
import NIOCore
import NIOSSL
import NIOTLS
import SluiceCore
import SluiceIdentity

/// Terminates ISTIO_MUTUAL on a gateway connection: the gateway's workload certificate is
/// presented, a client certificate chaining to `root-cert.pem` with a SPIFFE ID of the
/// gateway's trust domain is required, and once the handshake is done the listener's own
/// pipeline (HTTP routed by Host, or the sniffer routing wrapped TLS by its inner SNI) runs
/// on the plaintext inside, with the caller's identity on the `DownstreamConnection`.
enum MeshTLSServer {
    /// Adds the TLS server and the hand-off to `next` once the handshake is done.
    static func install(
        on channel: any Channel,
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        credentials: MeshCredentials,
        next: @escaping (any Channel, any ChannelHandler, DownstreamConnection) throws -> Void
    ) throws {
        let identity = credentials.identity
        let verifier = PeerChainVerifier(roots: identity.roots, trustDomain: identity.spiffeID.trustDomain)
        try Self.terminate(on: channel, runtime: runtime, connection: connection, context: credentials.serverContext, verifier: verifier, next: next)
    }

    /// Terminates TLS with `context`: with `verifier`, the client's certificate is checked by
    /// it (ISTIO_MUTUAL); without, by BoringSSL as the context says (a Gateway server's SIMPLE
    /// asks for none, MUTUAL requires one chaining to its `caCertificates`).
    static func terminate(
        on channel: any Channel,
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        context: NIOSSLContext,
        verifier: PeerChainVerifier?,
        requiredSubjectAltNames: [String] = [],
        next: @escaping (any Channel, any ChannelHandler, DownstreamConnection) throws -> Void
    ) throws {
        let peer = PeerVerification()
        let tls = verifier.map { NIOSSLServerHandler(context: context, customVerificationCallback: peer.callback($0)) }
            ?? NIOSSLServerHandler(context: context)
        // A client's FIN right behind its last handshake flight (request and EOF sent in one
        // go) must not reach NIOSSL while our verification callback's answer is still on its
        // way: NIOSSL would call it an EOF during the handshake. Held until the handshake is done.
        let hold = InputClosedHold()
        hold.hold()
        let accept = MeshTLSAcceptHandler(
            runtime: runtime, connection: connection, peer: peer, verifiedByBoringSSL: verifier == nil,
            requiredSubjectAltNames: requiredSubjectAltNames, hold: hold, next: next)
        try channel.pipeline.syncOperations.addHandlers([hold, tls, accept])
    }
}

/// Waits for the server handshake: on success installs the listener's pipeline behind
/// itself and leaves; on failure logs the reason, counts it and closes.
final class MeshTLSAcceptHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private let peer: PeerVerification
    /// SIMPLE / MUTUAL with certificate files: BoringSSL verified the client's certificate
    /// (if one was asked for), so its names are read from the handshake's result.
    private let verifiedByBoringSSL: Bool
    /// MUTUAL's `subjectAltNames`: the client certificate must carry one of them.
    private let requiredSubjectAltNames: [String]
    private let hold: InputClosedHold
    private let next: (any Channel, any ChannelHandler, DownstreamConnection) throws -> Void
    private var timeout: Scheduled<Void>?
    private var finished = false

    init(
        runtime: ProxyRuntime, connection: DownstreamConnection, peer: PeerVerification, verifiedByBoringSSL: Bool,
        requiredSubjectAltNames: [String] = [],
        hold: InputClosedHold, next: @escaping (any Channel, any ChannelHandler, DownstreamConnection) throws -> Void
    ) {
        self.runtime = runtime
        self.connection = connection
        self.peer = peer
        self.verifiedByBoringSSL = verifiedByBoringSSL
        self.requiredSubjectAltNames = requiredSubjectAltNames
        self.hold = hold
        self.next = next
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that never finishes its handshake must not hold the connection forever.
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timeout = context.eventLoop.scheduleTask(in: .init(self.runtime.config.limits.headerReadTimeout)) {
            let (handler, context) = bound.value
            handler.fail(context: context, reason: "timeout", error: "no handshake within the header-read timeout")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !self.finished else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        var connection = self.connection
        if !self.verifiedByBoringSSL {
            connection.authenticated(as: self.peer.identity)
        } else if let certificate = PeerVerification.peerCertificate(in: context.pipeline.syncOperations) {
            // MUTUAL: a client certificate was required and verified (SIMPLE asked for none).
            guard PeerSubjectAltNames.matches(certificate, required: self.requiredSubjectAltNames) else {
                // Envoy refuses the handshake; here it has just completed, and the connection
                // is closed before a byte of it is read.
                self.fail(context: context, reason: PeerVerificationFailure.sanMismatch.rawValue,
                          error: "no subject alternative name of the client certificate is in the server's subjectAltNames")
                return
            }
            let names = PeerURISAN(of: certificate)
            connection.authenticated(as: names.spiffeID, uriSAN: names.text)
        }
        self.finished = true
        self.timeout?.cancel()
        do {
            try self.next(context.channel, self, connection)
        } catch {
            context.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        // Not from inside NIOSSL's event: it decodes the records that came with the last
        // handshake flight only after this returns, and the EOF must follow them.
        let hold = NIOLoopBound(self.hold, eventLoop: context.eventLoop)
        context.eventLoop.execute { hold.value.release() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !self.finished else {
            context.fireErrorCaught(error)
            return
        }
        self.fail(context: context, reason: self.peer.reason(for: error), error: "\(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed before a handshake began (a probe, a port scan): nothing to count.
        self.finished = true
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, reason: String, error: String) {
        guard !self.finished else { return }
        self.finished = true
        self.runtime.identityMetrics?.handshakeFailed(reason: reason)
        self.runtime.logger.warning(
            "mTLS handshake failed",
            metadata: [
                "reason": "\(reason)", "downstream_remote_address": "\(self.connection.remoteText ?? "-")",
                "downstream_local_address": "\(self.connection.destinationText)", "error": "\(error)",
            ])
        context.close(promise: nil)
    }
}
