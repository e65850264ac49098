import NIOCore
import NIOPosix
import SluiceCore

/// Why an upstream gave no answer.
struct DNSForwardError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// Sends a query to the pod's resolvers (resolv.conf's nameservers, in order; the next on a
/// timeout) over UDP from an ephemeral port, and returns the first reply that carries the
/// query's id. The sidecar runs as the proxy uid, so these queries are not captured again.
final class DNSForwarder: Sendable {
    let upstreams: [IPAddress]
    let timeout: TimeAmount

    init(upstreams: [IPAddress], timeout: TimeAmount = .seconds(2)) {
        self.upstreams = upstreams
        self.timeout = timeout
    }

    func forward(_ query: [UInt8], on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        attempt(query, index: 0, on: loop)
    }

    private func attempt(_ query: [UInt8], index: Int, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        guard index < upstreams.count else {
            return loop.makeFailedFuture(DNSForwardError(reason: upstreams.isEmpty ? "no nameserver in resolv.conf" : "no nameserver answered"))
        }
        let upstream = upstreams[index]
        return once(query, to: upstream, on: loop).flatMapError { _ in
            self.attempt(query, index: index + 1, on: loop)
        }
    }

    private func once(_ query: [UInt8], to upstream: IPAddress, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        guard query.count >= 2, let address = try? SocketAddress(ipAddress: upstream.description, port: 53) else {
            promise.fail(DNSForwardError(reason: "bad upstream \(upstream)"))
            return promise.futureResult
        }
        let id = UInt16(query[0]) << 8 | UInt16(query[1])
        let timeout = self.timeout
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DNSReplyHandler(id: id, from: address, timeout: timeout, promise: promise))
                }
            }
            .bind(host: upstream.isIPv4 ? "0.0.0.0" : "::", port: 0)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(error)
                case .success(let channel):
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    let envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: query))
                    channel.writeAndFlush(envelope).whenFailure { promise.fail($0) }
                }
            }
        return promise.futureResult
    }
}

/// Completes the promise, once, with the first datagram from the upstream carrying the
/// query's id, or fails it after `timeout`. (Reply and timer run on the channel's event
/// loop, so `done` needs no lock.)
private final class DNSReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let id: UInt16
    let from: SocketAddress
    let timeout: TimeAmount
    let promise: EventLoopPromise<[UInt8]>
    private var done = false
    private var timer: Scheduled<Void>?

    init(id: UInt16, from: SocketAddress, timeout: TimeAmount, promise: EventLoopPromise<[UInt8]>) {
        self.id = id
        self.from = from
        self.timeout = timeout
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.finish(.failure(DNSForwardError(reason: "\(loopBound.value.from) did not answer in \(loopBound.value.timeout)")))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(DNSForwardError(reason: "closed before an answer")))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        guard envelope.remoteAddress == from, bytes.count >= 12, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == id else { return }
        finish(.success(bytes))
    }

    private func finish(_ result: Result<[UInt8], any Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        promise.completeWith(result)
    }
}
