import Logging
import NIOCore
import SluiceCore

// HTTPProxyHandler's tunnels: the app's CONNECT, and an exchange the origin upgraded (101).
// Both end in `Tunnel.splice`, as the gateway's CONNECT listener does.
extension HTTPProxyHandler {
    /// Turns an upgraded exchange into a raw tunnel, once the 101 has been relayed.
    func switchToTunnel(_ exchange: HTTPExchange, upstream: any HTTPUpstream) {
        if upstream === self.upstream { self.upstream = nil }
        guard let tunnel = upstream.takeTunnel() else {
            if let context = self.context { self.closeDownstream(context) }
            upstream.close()
            return
        }
        self.glueTunnel(exchange, upstreamChannel: tunnel.channel, fromOrigin: tunnel.bytes, upstreamHTTP: upstream)
    }

    /// Glues the downstream to `upstreamChannel` as raw bytes: the HTTP handlers leave both
    /// pipelines, and what each had read past the switch (the app's first tunnel bytes, the
    /// origin's bytes behind its 101) goes to the other side first. `upstreamHTTP` is nil for
    /// a raw upstream, as after CONNECT. The exchange is logged when the tunnel closes.
    func glueTunnel(
        _ exchange: HTTPExchange,
        upstreamChannel: any Channel,
        fromOrigin: ByteBuffer? = nil,
        upstreamHTTP: (any HTTPUpstream)?
    ) {
        guard let context = self.context, context.channel.isActive, upstreamChannel.isActive else {
            if let context = self.context { self.closeDownstream(context) }
            upstreamChannel.close(promise: nil)
            return
        }
        self.exchange = nil
        self.releaseCluster(exchange)
        self.deadlines.clear()
        self.state.closed()  // this handler is done with the connection
        let downstream = context.channel
        let runtime = self.runtime
        let fromApp = self.inbound.take()
        do {
            try Tunnel.splice(downstream: downstream, upstream: upstreamChannel, fromApp: fromApp, fromOrigin: fromOrigin) { counters in
                exchange.record.bytesReceived &+= counters.downstreamBytes
                exchange.record.bytesSent &+= counters.upstreamBytes
                exchange.record.duration = exchange.start.millisecondsElapsed
                runtime.completedRequest(exchange.record)
            }
        } catch {
            downstream.close(promise: nil)
            upstreamChannel.close(promise: nil)
            return
        }
        upstreamHTTP?.leavePipeline()
        downstream.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        downstream.read()
        GlueHandler.startReading(upstreamChannel)
        upstreamChannel.read()
    }

    /// `CONNECT host:port` from the app: decided like the gateway's CONNECT listener decides a
    /// tunnel (the registry by name or address, on any protocol of that port), then the sidecar
    /// itself dials the target (directly or through the egress gateway), answers 200 and glues
    /// the tunnel. Unregistered under REGISTRY_ONLY: 403, as Envoy answers a CONNECT it has no
    /// route for.
    func connectTunnel(_ head: HTTP1Head, target: String, record: AccessLogRecord, config: ActiveConfig, context: ChannelHandlerContext) {
        var record = record
        record.authority = target
        guard let tunnelTarget = Authority(target, as: .hostAndPort) else {
            let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
            self.exchange = exchange
            self.respondLocally(exchange, status: .badRequest, flag: .downstreamProtocolError, body: "", context: context, closeAfter: true)
            return
        }
        let upstreamTarget = Tunnel.decide(
            connectTo: tunnelTarget,
            runtime: self.runtime,
            config: config,
            record: &record,
            source: " from the app"
        )
        let exchange = HTTPExchange(phase: .failed, taking: &record, head: head)
        self.exchange = exchange
        guard let upstreamTarget else {
            self.respondLocally(exchange, status: .forbidden, flag: .noRouteFound, body: "", context: context, closeAfter: true)
            return
        }
        exchange.state.startConnecting(with: nil)
        self.runtime.connector.connect(
            target: upstreamTarget,
            gateway: config.gateway,
            eventLoop: context.eventLoop,
            connectTimeout: .init(config.limits.connectTimeout)
        ) { result in
            guard self.exchange === exchange, let context = self.context else {
                if case .success(let connection) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .failure(let failure):
                exchange.state.failed()
                exchange.record.upstreamTransportFailureReason = failure.transportFailureReason
                self.respondLocally(exchange, status: .serviceUnavailable, flag: failure.responseFlag, body: "", context: context, closeAfter: true)
            case .success(let connection):
                Tunnel.noteEstablished(connection, in: &exchange.record)
                exchange.state.tunnelEstablished()
                var answer = self.allocator.buffer(capacity: 96)
                HTTP1LocalReply.writeConnectEstablished(versionMinor: exchange.requestVersionMinor, date: HTTPDate.now(), to: &answer)
                context.writeAndFlush(self.wrapOutboundOut(answer), promise: nil)
                self.glueTunnel(exchange, upstreamChannel: connection.channel, upstreamHTTP: nil)
            }
        }
    }
}
