import Logging
import NIOCore
import NIOHTTP1
import SluiceCore

/// First handler on an intercepted connection: buffers the client's first bytes until
/// `ProtocolDetector` can tell TLS, HTTP/1 or opaque TCP (bounded in bytes and time),
/// then hands the connection to the HTTP proxy or the TCP forwarder and gets out of the way.
///
/// While the hand-off is in progress it holds `read()` so no byte is read that nobody
/// would forward; everything it buffered is replayed in order.
final class SniffHandler: ChannelDuplexHandler, RemovableChannelHandler, LoopTimerHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private enum State {
        case sniffing
        case handingOff
        case done
    }

    private let runtime: ProxyRuntime
    private let connection: DownstreamConnection
    private var state = State.sniffing
    /// The client's bytes so far, and its EOF if it came while we decided or handed off:
    /// replayed in order to the handlers behind us.
    private var held = HeldInbound()
    /// The detection timer, on the loop's `LoopTimers` (a NIO task costs a promise and closures
    /// on every accepted connection, a NIO scheduled callback ~10k instructions to arm and cancel).
    private var timeout: LoopTimer?
    /// The detection timer fired (counted as `timeout`, not `opaque`).
    private var timedOut = false
    /// Set while in the pipeline, for the timer.
    private var context: ChannelHandlerContext?

    /// Its name in the pipeline. Given rather than left to NIO, which makes one up per
    /// handler added (`"handler\(n)"`, a string formatted on every accepted connection).
    static let pipelineName = "sniff"

    init(runtime: ProxyRuntime, connection: DownstreamConnection) {
        self.runtime = runtime
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let limits = self.runtime.config.limits
        let loop = context.eventLoop
        self.timeout = LoopTimers.on(loop).schedule(at: loop.now + TimeAmount(limits.detectionTimeout), self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimeout()
        self.context = nil
    }

    /// The detection timeout: a client that says nothing (or a server-first protocol) is
    /// opaque TCP, decided by address.
    func loopTimerFired() {
        self.timeout = nil
        guard let context = self.context else { return }
        self.timedOut = true
        self.decide(context: context, detected: .opaque)
    }

    private func cancelTimeout() {
        self.timeout?.cancel()
        self.timeout = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        self.held.append(&chunk)
        guard case .sniffing = self.state, let buffer = self.held.bytes else { return }
        if let detected = ProtocolDetector.detect(buffer) {
            self.decide(context: context, detected: detected)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch self.state {
        case .sniffing:
            // The client finished sending before we could tell: forward what it sent as opaque TCP.
            if self.held.readableBytes == 0 {
                context.close(promise: nil)
                return
            }
            self.held.holdInputClosed()
            self.decide(context: context, detected: .opaque)
        case .handingOff:
            // Nobody behind us forwards yet; the half-close must not be lost.
            self.held.holdInputClosed()
        case .done:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        // While handing off, the read is dropped on purpose: `finishHandOff` issues a new one.
        if case .handingOff = self.state { return }
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Applies the policy to what the bytes said, and routes the connection accordingly.
    private func decide(context: ChannelHandlerContext, detected: DetectedProtocol) {
        guard case .sniffing = self.state else { return }
        self.cancelTimeout()
        self.state = .handingOff
        let outcome: SniffOutcome
        switch detected {
        case .http: outcome = .http
        case .http2: outcome = .http2
        case .tls: outcome = .tls
        case .opaque: outcome = self.timedOut ? .timeout : .opaque
        }
        self.runtime.metrics.sniffed(outcome)
        switch detected {
        case .http:
            self.handOffToHTTP(context: context)
        case .http2:
            self.handOffToHTTP2(context: context)
        case .tls(let serverName):
            self.forwardTCP(context: context, kind: .tls(serverName: serverName), serverName: serverName)
        case .opaque:
            self.forwardTCP(context: context, kind: .tcp, serverName: nil)
        }
    }

    private func forwardTCP(context: ChannelHandlerContext, kind: TrafficKind, serverName: String?) {
        let config = self.runtime.config
        guard let destination = self.connection.destinationIP,
            let port = self.connection.destinationPort
        else {
            context.close(promise: nil)
            return
        }
        let decision = config.policy.decide(ConnectionFacts(kind: kind, destination: destination, port: port))
        let forwarder = TCPForwarder(
            runtime: self.runtime,
            connection: self.connection,
            decision: decision,
            serverName: serverName,
            config: config
        )
        let buffered = self.held.takeBytes() ?? context.channel.allocator.buffer(capacity: 0)
        switch decision.action {
        case .deny:
            self.state = .done
            forwarder.deny(channel: context.channel, bytesReceived: buffered.readableBytes)
        case .forward(let target):
            // AuthorizationPolicy (gateway): connection-level attributes; a denial closes.
            if GatewayAuthorization.denial(runtime: self.runtime, config: config, connection: self.connection, serverName: serverName) != nil {
                self.state = .done
                forwarder.denyByAuthorization(channel: context.channel, bytesReceived: buffered.readableBytes)
                return
            }
            let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            forwarder.forward(downstream: context.channel, target: target, buffered: buffered) {
                self.finishHandOff(context: contextBound.value)
            }
        }
    }

    private func handOffToHTTP(context: ChannelHandlerContext) {
        do {
            try HTTPProxyPipeline.install(
                on: context.channel,
                after: self,
                runtime: self.runtime,
                connection: self.connection
            )
        } catch {
            context.close(promise: nil)
            return
        }
        self.finishHandOff(context: context)
    }

    private func handOffToHTTP2(context: ChannelHandlerContext) {
        do {
            try HTTP2ServerPipeline.install(on: context.channel, after: self, runtime: self.runtime, connection: self.connection)
        } catch {
            context.close(promise: nil)
            return
        }
        self.finishHandOff(context: context)
    }

    /// Replays whatever was buffered to the handlers now behind us, then leaves.
    private func finishHandOff(context: ChannelHandlerContext) {
        self.state = .done
        let replay = self.held.takeForReplay()
        if let rest = replay.bytes {
            context.fireChannelRead(self.wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        if replay.inputClosed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        let channel = context.channel
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        // Reads were held while we decided; start them again now that someone forwards them.
        channel.read()
    }
}
