import Logging
import NIOCore
import SluiceCore

/// First handler on a gateway connection whose port has several Gateway servers that differ in
/// TLS (mode or certificate): reads the ClientHello (bounded in bytes and time), picks the
/// server its SNI names (`ListenerTLSServer.choose`, Envoy's filter-chain match), lets
/// `install` put that server's TLS handling behind it, replays the bytes and leaves. No
/// server for the name, no TLS, or no ClientHello in time: the connection is closed, logged
/// and counted (`sluice_tls_handshake_failures_total{reason="no_server"}`), as Envoy closes a
/// connection no filter chain matches.
final class ServerNameDispatchHandler: ChannelInboundHandler, RemovableChannelHandler, LoopTimerHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// At most this many bytes are read looking for the ClientHello (as the sniffer's limit).
    static let maxClientHelloBytes = 16 * 1024 + 64

    private let runtime: ProxyRuntime
    private let port: Int
    private let servers: [ListenerTLSServer]
    private let install: (ListenerTLSServer) throws -> Void
    private var held = HeldInbound()
    private var deciding = true
    private var timeout: LoopTimer?
    private var context: ChannelHandlerContext?

    init(runtime: ProxyRuntime, port: Int, servers: [ListenerTLSServer], install: @escaping (ListenerTLSServer) throws -> Void) {
        self.runtime = runtime
        self.port = port
        self.servers = servers
        self.install = install
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        self.timeout = LoopTimers.on(loop).schedule(at: loop.now + TimeAmount(self.runtime.config.limits.detectionTimeout), self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeout?.cancel()
        self.timeout = nil
        self.context = nil
    }

    func loopTimerFired() {
        self.timeout = nil
        guard let context = self.context, self.deciding else { return }
        self.refuse(context: context, why: "no ClientHello within the detection timeout", serverName: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        self.held.append(&chunk)
        guard self.deciding, let bytes = self.held.bytes else { return }
        switch ClientHelloParser.parse(bytes) {
        case .incomplete:
            if bytes.readableBytes >= Self.maxClientHelloBytes {
                self.refuse(context: context, why: "no complete ClientHello in \(Self.maxClientHelloBytes) bytes", serverName: nil)
            }
        case .notTLS, .malformed:
            self.refuse(context: context, why: "not a TLS ClientHello", serverName: nil)
        case .clientHello(let serverName):
            guard let index = ListenerTLSServer.choose(self.servers, serverName: serverName) else {
                self.refuse(context: context, why: "no Gateway server on this port for the SNI", serverName: serverName)
                return
            }
            self.dispatch(context: context, to: self.servers[index])
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if self.deciding, let event = event as? ChannelEvent, case .inputClosed = event {
            // The client stopped sending before its ClientHello was complete.
            self.refuse(context: context, why: "closed before its ClientHello", serverName: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func dispatch(context: ChannelHandlerContext, to server: ListenerTLSServer) {
        self.deciding = false
        self.timeout?.cancel()
        self.timeout = nil
        do {
            try self.install(server)
        } catch {
            context.close(promise: nil)
            return
        }
        if let bytes = self.held.takeForReplay().bytes {
            context.fireChannelRead(self.wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(context: ChannelHandlerContext, why: String, serverName: String?) {
        self.deciding = false
        self.timeout?.cancel()
        self.timeout = nil
        _ = self.held.takeForReplay()
        self.runtime.logger.info(
            "gateway TLS connection closed: \(why)",
            metadata: ["port": "\(self.port)", "sni": "\(serverName ?? "-")", "peer": "\(context.channel.remoteAddress?.description ?? "-")"])
        self.runtime.identityMetrics?.handshakeFailed(reason: IdentityMetrics.noServer)
        context.close(promise: nil)
    }
}
