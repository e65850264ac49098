import Foundation
import NIOCore
import NIOPosix
public import ServiceLifecycle
import SluiceCore

/// The sidecar's DNS proxy (`dns.proxy: true`): UDP and TCP on 127.0.0.1 (and ::1) port
/// 15053, where `sluice-init --capture-dns` redirects the pod's port-53 traffic, like
/// Istio's DNS proxy. See DNSResponder for what it answers.
public final class DNSProxy: Service, Sendable {
    /// The port Istio's DNS proxy uses.
    public static let defaultPort = 15053
    private let runtime: ProxyRuntime
    private let responder: DNSResponder
    private let port: Int
    private let group: MultiThreadedEventLoopGroup

    /// Creates the proxy, serving on `threads` event loops (the sidecar's `--concurrency`);
    /// `resolvConf` is read once here for the upstream nameservers.
    public init(
        runtime: ProxyRuntime, book: LearnedAddressBook, port: Int = DNSProxy.defaultPort, threads: Int = 1,
        resolvConf: String = "/etc/resolv.conf"
    ) {
        let text = (try? String(contentsOfFile: resolvConf, encoding: .utf8)) ?? ""
        let upstreams = ResolvConf.nameservers(text)
        if upstreams.isEmpty { runtime.logger.warning("DNS: no nameserver in \(resolvConf): unregistered names cannot be resolved") }
        self.runtime = runtime
        self.port = port
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.responder = DNSResponder(runtime: runtime, book: book, upstreams: upstreams)
    }

    /// Serves until graceful shutdown.
    public func run() async throws {
        var channels: [any Channel] = []
        var listeners: [DNSDatagramListener] = []
        for host in ["127.0.0.1", "::1"] {
            var udp: [DNSDatagramListener] = []
            do {
                // One UDP socket per event loop, all on the port (SO_REUSEPORT: the kernel
                // spreads the pod's queries over them by source address and port), each read
                // by a thread of its own that answers cache hits; misses go to its loop.
                for loop in group.makeIterator() {
                    udp.append(try DNSDatagramListener(host: host, port: port, responder: responder, loop: loop, logger: runtime.logger))
                }
                channels.append(try await bindTCP(host))
                listeners += udp
            } catch where host == "::1" {
                for listener in udp { listener.close() }
                runtime.logger.info("DNS: not listening on [::1]:\(port): \(error)")
            }
        }
        for listener in listeners { listener.start() }
        runtime.logger.notice("DNS proxy listening on port \(port) (UDP and TCP, \(listeners.count + channels.count) sockets)")
        try? await gracefulShutdown()
        // The threads first (each woken and joined), then the loops; a UDP socket is closed
        // last, once no loop can still send a forwarded answer on it.
        for listener in listeners { listener.stop() }
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
        for listener in listeners { listener.close() }
    }

    private func bindTCP(_ host: String) async throws -> any Channel {
        let responder = self.responder
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSLengthPrefixDecoder()))
                    try channel.pipeline.syncOperations.addHandler(DNSStreamHandler(responder))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// TCP (RFC 1035 4.2.2): each message behind a two-byte length.
struct DNSLengthPrefixDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let message = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length))
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(message))
        return .continue
    }
}

/// TCP: answers each query as its answer is ready (RFC 7766 6.2.1.1: replies carry the
/// query's id and may come out of order). A cache hit takes the same path as on UDP
/// (`respondFromCache`: the cached bytes patched, no message parsed), then framed.
private final class DNSStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let responder: DNSResponder

    init(_ responder: DNSResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        let channel = context.channel
        if let reply = responder.respondFromCache(message, allocator: channel.allocator) {
            Self.write(reply.readableBytesView, on: channel)
            return
        }
        responder.respond(Array(message.readableBytesView), from: context.remoteAddress, on: context.eventLoop).whenSuccess { reply in
            guard let reply else {
                channel.close(promise: nil)
                return
            }
            Self.write(reply, on: channel)
        }
    }

    /// One reply behind its two-byte length; a reply too long to frame closes the connection.
    private static func write<Bytes: Collection<UInt8>>(_ reply: Bytes, on channel: any Channel) {
        guard reply.count <= Int(UInt16.max) else {
            channel.close(promise: nil)
            return
        }
        var buffer = channel.allocator.buffer(capacity: reply.count + 2)
        buffer.writeInteger(UInt16(reply.count))
        buffer.writeBytes(reply)
        channel.writeAndFlush(buffer, promise: nil)
    }
}
