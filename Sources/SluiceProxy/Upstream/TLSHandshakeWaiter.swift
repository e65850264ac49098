import NIOCore
import NIOSSL
import NIOTLS
import SluiceCore

/// Waits for a client TLS handshake on a fresh upstream connection (ISTIO_MUTUAL to the
/// gateway, or origination): issues the first read (the channel has `autoRead` off), runs
/// `verify` once the handshake is done, completes the promise and leaves. A failure closes
/// the connection with the `UpstreamError` the caller words. The handshake is bounded by
/// `timeout` (the cluster's connect timeout, which in Envoy covers the transport socket's
/// handshake too): a server that accepts TCP and never answers fails the dial, not hangs it.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<Void>
    /// After the handshake: nil to accept the peer, else why not.
    private let verify: (ChannelHandlerContext) -> UpstreamError?
    /// A handshake error as the caller reports it.
    private let failure: (any Error) -> UpstreamError
    /// The peer closed before the handshake was done.
    private let closed: UpstreamError
    /// How long the handshake may take; nil: unbounded.
    private let timeout: TimeAmount?
    private var timer: Scheduled<Void>?
    private var done = false

    init(
        promise: EventLoopPromise<Void>,
        verify: @escaping (ChannelHandlerContext) -> UpstreamError? = { _ in nil },
        failure: @escaping (any Error) -> UpstreamError,
        closed: UpstreamError,
        timeout: TimeAmount? = nil
    ) {
        self.promise = promise
        self.verify = verify
        self.failure = failure
        self.closed = closed
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let timeout = self.timeout {
            self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                self.timedOut(context: context, after: timeout)
            }
        }
        context.read()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    private func timedOut(context: ChannelHandlerContext, after timeout: TimeAmount) {
        self.timer = nil
        guard !self.done else { return }
        self.done = true
        let remote = context.remoteAddress?.logDescription ?? "the upstream"
        self.promise.fail(UpstreamError.connectTimeout("TLS handshake with \(remote) not done after \(timeout.nanoseconds / 1_000_000)ms"))
        context.close(promise: nil)
    }

    /// Settled: the timer has nothing left to bound.
    private func finish() {
        self.done = true
        self.timer?.cancel()
        self.timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, !self.done else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.finish()
        if let refused = self.verify(context) {
            self.promise.fail(refused)
            context.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        self.promise.succeed(())
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !self.done else {
            context.fireErrorCaught(error)
            return
        }
        self.finish()
        self.promise.fail(self.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.done {
            self.finish()
            self.promise.fail(self.closed)
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
}
