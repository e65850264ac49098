public import NIOCore
import NIOPosix
import Synchronization

/// Request heads an origin has read, counted across its connections.
public final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)
    public init() {}
    /// Counts one; returns the new total.
    func next() -> Int { count.wrappingAdd(1, ordering: .relaxed).newValue }
    /// Heads read so far.
    public var value: Int { count.load(ordering: .relaxed) }
}

extension Loopback {
    /// An origin that closes the connection without a byte on each of the first `resets`
    /// request heads it reads (across connections), then answers `200 ok`: an upstream reset
    /// before the response, for retries.
    public func startFlakyOrigin(resets: Int, counter: RequestCounter) throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FlakyOriginHandler(resets: resets, counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        adopt(channel)
        return channel.localAddress!
    }
}

private final class FlakyOriginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let resets: Int
    private let counter: RequestCounter
    private var head: [UInt8] = []

    init(resets: Int, counter: RequestCounter) {
        self.resets = resets
        self.counter = counter
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        head += Array(Self.unwrapInboundIn(data).readableBytesView)
        while let end = head.firstRange(of: Array("\r\n\r\n".utf8)) {
            head.removeSubrange(..<end.upperBound)
            if counter.next() <= resets {
                context.close(promise: nil)
                return
            }
            let reply = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: reply)), promise: nil)
        }
    }
}
