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
    /// Datagrams read per system call.
    static let batch = 16

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
        self.responder = DNSResponder(runtime: runtime, book: book, forwarder: DNSForwarder(upstreams: upstreams))
    }

    /// Serves until graceful shutdown.
    public func run() async throws {
        var channels: [any Channel] = []
        for host in ["127.0.0.1", "::1"] {
            do {
                // One UDP socket per event loop, all on the port (SO_REUSEPORT): the kernel
                // spreads the pod's queries over them by source address and port.
                for loop in group.makeIterator() { channels.append(try await bindUDP(host, on: loop)) }
                channels.append(try await bindTCP(host))
            } catch where host == "::1" {
                runtime.logger.info("DNS: not listening on [::1]:\(port): \(error)")
            }
        }
        runtime.logger.notice("DNS proxy listening on port \(port) (UDP and TCP, \(channels.count) sockets)")
        try? await gracefulShutdown()
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
    }

    private func bindUDP(_ host: String, on loop: any EventLoop) async throws -> any Channel {
        let responder = self.responder
        return try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            // Batched: up to 16 queries a recvmmsg (2 KiB each, more than a query needs), and
            // the replies to a batch go out together on the read's completion.
            .channelOption(.datagramVectorReadMessageCount, value: Self.batch)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.batch * 2048))
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DNSDatagramHandler(responder)) }
            }
            .bind(host: host, port: port).get()
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

/// UDP: one query per datagram, the reply to its sender.
private final class DNSDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let responder: DNSResponder

    init(_ responder: DNSResponder) { self.responder = responder }

    private var unflushed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let remote = envelope.remoteAddress
        if let reply = responder.respondFromCache(envelope.data, allocator: context.channel.allocator) {
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: reply)), promise: nil)
            unflushed = true
            return
        }
        let channel = context.channel
        responder.respond(Array(envelope.data.readableBytesView), from: remote, on: context.eventLoop).whenSuccess { reply in
            guard let reply else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: reply)), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush a batch: NIO sends the pending replies with sendmmsg.
        if unflushed {
            unflushed = false
            context.flush()
        }
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
