import NIOCore
import SluiceCore

/// Byte counters and close bookkeeping shared by the two halves of a glued connection.
/// Both halves live on one event loop, so this needs no lock.
final class TransferCounters {
    /// Bytes read from the downstream (the app) and written upstream.
    var downstreamBytes: UInt64 = 0
    /// Bytes read from the upstream and written to the downstream.
    var upstreamBytes: UInt64 = 0
    /// Set when the upstream closed before the downstream did (Envoy's `UC`).
    var upstreamClosedFirst = false
    var downstreamClosedFirst = false
}

/// Joins two channels so that bytes read on one are written to the other — the
/// `GlueHandler` of swift-nio-examples' connect-proxy, plus half-close and byte counts.
///
/// Backpressure: a `read()` is held while the partner is not writable and replayed when it
/// becomes writable again. Half-close: EOF on one side becomes `close(mode: .output)` on the
/// other (both channels must have `allowRemoteHalfClosure`); when both directions have
/// ended, both channels close.
final class GlueHandler {
    enum Side { case downstream, upstream }

    private let side: Side
    private let counters: TransferCounters
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var readHold = ReadHoldStateMachine()
    private var inputClosed = false
    private var outputClosed = false

    private init(side: Side, counters: TransferCounters) {
        self.side = side
        self.counters = counters
    }

    /// Two handlers that point at each other: the first for the downstream channel.
    static func matchedPair(counters: TransferCounters) -> (downstream: GlueHandler, upstream: GlueHandler) {
        let down = GlueHandler(side: .downstream, counters: counters)
        let up = GlueHandler(side: .upstream, counters: counters)
        down.partner = up
        up.partner = down
        return (down, up)
    }

    private func partnerWrite(_ data: NIOAny) {
        self.context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        self.context?.flush()
    }

    /// The partner's input ended: end our output (half-close), or close if both are done.
    private func partnerInputClosed() {
        self.outputClosed = true
        self.closeAfterPendingWrites(fully: self.inputClosed)
    }

    private func partnerCloseFull() {
        self.closeAfterPendingWrites(fully: true)
    }

    /// Closes once everything already written has reached the socket: NIO fails writes still
    /// pending at close, which would truncate the tail of a transfer.
    private func closeAfterPendingWrites(fully: Bool) {
        guard let context = self.context else { return }
        let flushed = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: flushed)
        flushed.futureResult.assumeIsolated().whenComplete { _ in
            if fully {
                context.close(promise: nil)
                return
            }
            let halfClosed = context.eventLoop.makePromise(of: Void.self)
            context.close(mode: .output, promise: halfClosed)
            halfClosed.futureResult.assumeIsolated().whenFailure { _ in context.close(promise: nil) }
        }
    }

    private func partnerBecameWritable() {
        if self.readHold.resume(held: false) {
            self.context?.read()
        }
    }

    private var partnerWritable: Bool {
        self.context?.channel.isWritable ?? false
    }
}

extension GlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = UInt64(self.unwrapInboundIn(data).readableBytes)
        switch self.side {
        case .downstream: self.counters.downstreamBytes &+= count
        case .upstream: self.counters.upstreamBytes &+= count
        }
        self.partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let partner = self.partner, partner.context != nil {
            switch self.side {
            case .upstream: if !self.counters.downstreamClosedFirst { self.counters.upstreamClosedFirst = true }
            case .downstream: if !self.counters.upstreamClosedFirst { self.counters.downstreamClosedFirst = true }
            }
        }
        self.partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? IdleStateHandler.IdleStateEvent, event == .all {
            self.partner?.partnerCloseFull()
            context.close(promise: nil)
            return
        }
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.inputClosed = true
            self.partner?.partnerInputClosed()
            if self.outputClosed { self.closeAfterPendingWrites(fully: true) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.partner?.partnerCloseFull()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.partner?.partnerBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.inputClosed { return }
        switch self.readHold.read(held: !(self.partner?.partnerWritable ?? false)) {
        case .read: context.read()
        case .hold: break
        }
    }
}

extension GlueHandler {
    /// Joins two channels as a raw tunnel: a matched pair of glue handlers at the end of each
    /// pipeline (with Envoy's TCP idle timeout on the downstream when given), and `onClose`
    /// called once both have closed, with the bytes moved each way. Shared by TLS/TCP
    /// forwarding, the gateway's CONNECT tunnels and HTTP upgrades.
    ///
    /// - Parameter counters: pre-filled when bytes were moved before the glue (sniffed bytes).
    static func join(
        downstream: any Channel,
        upstream: any Channel,
        idleTimeout: TimeAmount? = nil,
        counters: TransferCounters = TransferCounters(),
        onClose: @escaping (TransferCounters) -> Void
    ) throws {
        let (down, up) = GlueHandler.matchedPair(counters: counters)
        if let idleTimeout {
            try downstream.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
        }
        try downstream.pipeline.syncOperations.addHandler(down)
        try upstream.pipeline.syncOperations.addHandler(up)
        downstream.closeFuture.and(upstream.closeFuture).assumeIsolated().whenComplete { _ in
            onClose(counters)
        }
    }

    /// Turns reading on for an upstream that was dialled with autoRead off (so no byte of a
    /// server that speaks first arrived before the glue), closing it if that fails.
    static func startReading(_ upstream: any Channel) {
        upstream.setOption(.autoRead, value: true).whenFailure { _ in upstream.close(promise: nil) }
    }
}
