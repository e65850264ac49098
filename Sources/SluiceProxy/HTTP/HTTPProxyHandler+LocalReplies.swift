import Logging
import NIOCore
import SluiceCore

// The answers HTTPProxyHandler makes itself: denials, failed and timed-out upstreams, bad
// requests. The bytes are HTTP1LocalReply's (SluiceCore); here, what each answer does to the
// exchange, its log record and the connection.
extension HTTPProxyHandler {
    /// Bad bytes from the app: answer if no response has started (431 for an oversized head,
    /// 400 otherwise), log it, close this connection only.
    func badRequest(_ error: HTTP1ParseError, context: ChannelHandlerContext) {
        let tooLarge = error == .headTooLarge || error == .tooManyFields
        self.runtime.logger.info("bad HTTP request from \(self.connection.remoteText ?? "-"): \(error)")
        let exchange = self.exchange ?? self.makeLocalExchange()
        self.dropUpstream()
        exchange.state.requestAbandoned()
        if exchange.state.responseStarted {
            exchange.record.responseFlags.insert(.downstreamProtocolError)
            exchange.state.responseCut()
            self.finish(exchange, context: context, closeAfter: true)
        } else {
            exchange.state.failed()
            self.respondLocally(
                exchange,
                status: tooLarge ? .requestHeaderFieldsTooLarge : .badRequest,
                flag: .downstreamProtocolError,
                body: "",
                context: context,
                closeAfter: true
            )
        }
    }

    /// The route timeout passed before the response head (Envoy's 504 `UT`).
    func upstreamTimedOut(_ exchange: HTTPExchange, after timeout: TimeAmount) {
        guard self.exchange === exchange, !exchange.state.responseStarted, let context = self.context else { return }
        self.runtime.logger.warning(
            "upstream request timeout",
            metadata: ["authority": "\(exchange.record.authority ?? "-")", "after_ms": "\(timeout.nanoseconds / 1_000_000)"]
        )
        exchange.state.failed()
        self.dropUpstream()
        self.respondLocally(
            exchange,
            status: .gatewayTimeout,
            flag: .upstreamRequestTimeout,
            body: HTTP1LocalReply.upstreamTimeoutBody,
            context: context,
            closeAfter: !exchange.state.requestEnded
        )
    }

    /// The upstream failed the exchange in flight: the app's connection is cut if part of the
    /// response was relayed, else it gets Envoy's local answer for `transportFailure`.
    func failExchange(
        _ exchange: HTTPExchange,
        flag: ResponseFlags,
        status: LocalStatus,
        transportFailure: String,
        resetReason: String,
        context: ChannelHandlerContext
    ) {
        exchange.record.responseFlags.insert(flag)
        if exchange.state.responseStarted {
            // Mid-body: the response cannot be completed; the app must see a truncated transfer.
            exchange.state.responseCut()
            self.finish(exchange, context: context, closeAfter: true)
            return
        }
        exchange.state.failed()
        exchange.record.upstreamTransportFailureReason = transportFailure
        self.respondLocally(
            exchange,
            status: status,
            flag: nil,
            body: HTTP1LocalReply.resetBody(reason: resetReason),
            context: context,
            closeAfter: !exchange.state.requestEnded
        )
    }

    func respondDenied(_ exchange: HTTPExchange, context: ChannelHandlerContext, closeAfter: Bool) {
        if let answer = exchange.routeAnswer {
            self.respondLocally(exchange, status: answer.status, flag: answer.flag, body: answer.body, extraFields: answer.fields,
                                context: context, closeAfter: closeAfter)
            return
        }
        switch self.runtime.role {
        case .sidecar:
            // Envoy's BlackHoleCluster answer under REGISTRY_ONLY.
            self.respondLocally(exchange, status: .badGateway, flag: nil, body: "", context: context, closeAfter: closeAfter)
        case .gateway:
            // Envoy's gateway has no route for an unregistered host: 404 with NR.
            self.respondLocally(exchange, status: .notFound, flag: .noRouteFound, body: "", context: context, closeAfter: closeAfter)
        }
    }

    /// Sends a complete response of our own and finishes the exchange when the request has ended.
    func respondLocally(
        _ exchange: HTTPExchange,
        status: LocalStatus,
        flag: ResponseFlags?,
        body: String,
        extraFields: [(String, String)] = [],
        context: ChannelHandlerContext,
        closeAfter: Bool = false
    ) {
        if let flag { exchange.record.responseFlags.insert(flag) }
        exchange.record.responseCode = status.code
        let close = closeAfter || !exchange.keepAlive
        exchange.state.answeredLocally(close: close)
        var bytes = self.allocator.buffer(capacity: HTTP1LocalReply.capacity(body: body))
        let bodyBytes = HTTP1LocalReply.write(
            status,
            body: body,
            versionMinor: exchange.requestVersionMinor,
            close: close,
            isHEAD: exchange.isHEAD,
            date: HTTPDate.now(),
            extraFields: extraFields,
            to: &bytes
        )
        exchange.record.bytesSent &+= UInt64(bodyBytes)
        context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
        if exchange.isDone {
            self.finish(exchange, context: context, closeAfter: close)
        }
    }

    /// An exchange for an answer we give before any request head was read (400, 408, 431).
    func makeLocalExchange() -> HTTPExchange {
        var record = AccessLogRecord()
        self.connection.start(&record, at: wallClockMillis())
        let exchange = HTTPExchange(phase: .failed, record: record, versionMinor: 1, keepAlive: false, isHEAD: false)
        self.exchange = exchange
        return exchange
    }
}
