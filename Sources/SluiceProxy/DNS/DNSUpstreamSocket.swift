import NIOCore
import NIOPosix
import SluiceCore

/// One event loop's UDP socket to one resolver, connected (the kernel delivers only datagrams
/// from the resolver's address and port). Each query leaves with a random id of its own
/// (DNSPendingQueries); the answer that carries it and the query's question completes the
/// query with the query's id put back. An answer nothing waits for (spoofed, or late: its
/// query timed out) is dropped and counted. Each query has its own timeout; a timed-out query
/// fails, and DNSForwarder tries the next resolver. Opened on first use; reopened on the next
/// query if it closes (its queries in flight then fail).
///
/// A socket carries at most `queriesPerPort` queries: the next query opens a new socket, whose
/// source port the kernel picks at random, so the port a forger must guess besides the id
/// changes every few queries (RFC 5452 section 9.2) while the open is paid once per that many.
/// The retired socket stays open for one timeout, so answers to its queries still arrive.
///
/// Loop-bound: every method runs on `loop`.
final class DNSUpstreamSocket {
    /// A query in flight: what completes it, and its timer.
    final class Wait {
        let promise: EventLoopPromise<[UInt8]>
        var timer: Scheduled<Void>?
        init(_ promise: EventLoopPromise<[UInt8]>) { self.promise = promise }
    }

    /// How many queries one source port carries before a new socket takes over.
    static let queriesPerPort = 16

    let upstream: SocketAddress
    let timeout: TimeAmount
    let loop: any EventLoop
    let metrics: DNSMetrics?
    let queriesPerPort: Int
    private var pending = DNSPendingQueries<Wait>()
    private var random = SystemRandomNumberGenerator()
    private var channel: EventLoopFuture<any Channel>?
    /// Which socket `channel` is: a retired socket's close is not this one's.
    private var generation = 0
    /// Queries sent on `channel` so far.
    private var sentOnChannel = 0

    init(
        to upstream: SocketAddress, timeout: TimeAmount, on loop: any EventLoop, metrics: DNSMetrics?,
        queriesPerPort: Int = DNSUpstreamSocket.queriesPerPort
    ) {
        self.upstream = upstream
        self.timeout = timeout
        self.loop = loop
        self.metrics = metrics
        self.queriesPerPort = max(1, queriesPerPort)
    }

    /// Sends `query` and returns its answer; fails on a timeout or a socket error.
    func send(_ query: [UInt8]) -> EventLoopFuture<[UInt8]> {
        loop.preconditionInEventLoop()
        let wait = Wait(loop.makePromise(of: [UInt8].self))
        var bytes = query
        guard let id = pending.add(&bytes, waiter: wait, using: &random) else {
            wait.promise.fail(DNSForwardError(reason: query.count < 12 ? "not a DNS message" : "too many queries in flight to \(upstream)"))
            return wait.promise.futureResult
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let remapped = bytes
        wait.timer = loop.scheduleTask(in: timeout) {
            let socket = bound.value
            socket.pending.remove(id: id)?.promise.fail(DNSForwardError(reason: "\(socket.upstream) did not answer in \(socket.timeout)"))
        }
        retireIfWorn()
        let channel = connected()
        sentOnChannel += 1
        channel.whenComplete { result in
            switch result {
            case .success(let channel):
                channel.writeAndFlush(ByteBuffer(bytes: remapped)).whenFailure { error in
                    bound.value.fail(id, error)
                }
            case .failure(let error):
                bound.value.fail(id, error)
            }
        }
        return wait.promise.futureResult
    }

    /// An answer from the resolver: completes the query it answers, or is dropped.
    fileprivate func received(_ answer: ByteBuffer) {
        var bytes = Array(answer.readableBytesView)
        guard let wait = pending.take(&bytes) else {
            metrics?.countDroppedAnswer()
            return
        }
        wait.timer?.cancel()
        wait.promise.succeed(bytes)
    }

    /// The socket closed: its queries fail (and go to the next resolver); the next query opens
    /// a new one. A retired socket's close (its queries are answered or timed out) changes nothing.
    fileprivate func closed(generation: Int) {
        guard generation == self.generation else { return }
        channel = nil
        for wait in pending.removeAll() {
            wait.timer?.cancel()
            wait.promise.fail(DNSForwardError(reason: "socket to \(upstream) closed"))
        }
    }

    private func fail(_ id: UInt16, _ error: any Error) {
        guard let wait = pending.remove(id: id) else { return }
        wait.timer?.cancel()
        wait.promise.fail(error)
    }

    /// After `queriesPerPort` queries the socket is retired: the next query opens a new one, and
    /// this one closes once every query sent on it has been answered or has timed out.
    private func retireIfWorn() {
        guard sentOnChannel >= queriesPerPort, let retired = channel else { return }
        channel = nil
        generation &+= 1
        let timeout = self.timeout
        retired.whenSuccess { channel in
            channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
    }

    private func connected() -> EventLoopFuture<any Channel> {
        if let channel { return channel }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let generation = self.generation
        sentOnChannel = 0
        let opened = DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSUpstreamHandler(bound, generation: generation))
                }
            }
            .connect(to: upstream)
        channel = opened
        opened.whenFailure { _ in
            let socket = bound.value
            if socket.generation == generation { socket.channel = nil }
        }
        return opened
    }
}

/// The socket's pipeline end: answers to the socket, its close to the socket.
private final class DNSUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let socket: NIOLoopBound<DNSUpstreamSocket>
    let generation: Int

    init(_ socket: NIOLoopBound<DNSUpstreamSocket>, generation: Int) {
        self.socket = socket
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        socket.value.received(unwrapInboundIn(data).data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        socket.value.closed(generation: generation)
        context.fireChannelInactive()
    }

    /// A read error (an ICMP port unreachable reported on the connected socket): the queries
    /// in flight still wait for their timeouts, as with a socket per query.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
