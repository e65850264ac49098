import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import SluiceCore
public import SluiceProxy

/// Origins, a proxy listener and a raw client, all on 127.0.0.1, for tests that drive the
/// real SwiftNIO data path. iptables is not available here, so the listener hands each
/// connection a fixed "original destination" instead of reading SO_ORIGINAL_DST.
public final class Loopback: @unchecked Sendable {  // used from one test thread at a time
    public init() {}

    /// A fixture given bad input (the test's own mistake, said plainly).
    public enum FixtureError: Error, CustomStringConvertible {
        case badRegistry(String)

        public var description: String {
            switch self {
            case .badRegistry(let diagnostics): return "the test's registry does not load: \(diagnostics)"
            }
        }
    }

    public let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channels: [any Channel] = []
    private var runtimes: [ProxyRuntime] = []

    /// Closes `channel` when the fixture goes away.
    public func adopt(_ channel: any Channel) { channels.append(channel) }

    deinit {
        for channel in channels { try? channel.close().wait() }
        for runtime in runtimes { runtime.shutdown() }
        try? group.syncShutdownGracefully()
    }

    /// An HTTP/1.1 keep-alive origin: `Host: aliyun.com` → 301, `/bytes/N` → N bytes, else 200 naming the host.
    public func startHTTPOrigin() throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OriginHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    /// Echoes bytes; with `banner`, says it first (a server-first protocol).
    public func startEchoOrigin(banner: String? = nil) throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler(banner: banner))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    /// Answers each request head with `reply`, byte for byte (whatever it is), then closes
    /// when `close` is set: an origin that speaks exactly what a test needs.
    public func startScriptedOrigin(reply: String, close: Bool) throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedOriginHandler(reply: reply, close: close))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    /// Answers any request head with `101 Switching Protocols` plus a first frame, then
    /// echoes raw bytes: enough of a WebSocket origin to prove the tunnel after the upgrade.
    public func startUpgradeOrigin() throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpgradeOriginHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    /// Accepts and reads, never answers: an upstream that stalls.
    public func startSilentOrigin() throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    /// A sidecar listener whose every connection "was redirected from" `originalDestination`.
    public func startSidecar(
        config yaml: String, registry: String, originalDestination: SocketAddress, accessLog: AccessLogWriter? = nil,
        certificates: CertificateStore? = nil
    ) throws -> SocketAddress {
        let runtime = try Self.runtime(config: yaml, registry: registry, accessLog: accessLog, certificates: certificates)
        runtimes.append(runtime)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try runtime.connections.admit(channel, runtime: runtime)
                    let connection = DownstreamConnection(originalDestination: originalDestination, remote: channel.remoteAddress)
                    try OutboundListener.route(channel: channel, connection: connection, runtime: runtime)
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        channels.append(channel)
        return channel.localAddress!
    }

    public static func runtime(
        config yaml: String, registry: String, role: ProxyRole = .sidecar, accessLog: AccessLogWriter? = nil,
        certificates: CertificateStore? = nil
    ) throws -> ProxyRuntime {
        let config = try SluiceConfig.parse(yaml: yaml, path: "/test/sluice.yaml").get()
        let loaded = RegistryLoader.parse(yaml: registry, path: "/test/registry.yaml")
        if loaded.hasErrors { throw FixtureError.badRegistry("\(loaded.diagnostics)") }
        var snapshot = SluiceSnapshot(config: config, registry: Registry(loaded.entries))
        // Routing objects (VirtualService, DestinationRule, …) in the registry text apply too.
        snapshot.routing = loaded.routing
        // And AuthorizationPolicies (a gateway's; those of istio-system apply mesh-wide).
        snapshot.authorizationPolicies = loaded.authorizationPolicies
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return ProxyRuntime(
            role: role, config: ActiveConfig(snapshot: snapshot, role: role), accessLog: accessLog, logger: logger,
            certificates: certificates)
    }

    /// An open client connection that sends nothing.
    public func connect(to address: SocketAddress) throws -> any Channel {
        let channel = try ClientBootstrap(group: group).connect(to: address).wait()
        return channel
    }

    /// Connects, sends `bytes`, optionally half-closes, and returns everything read until
    /// the server closes or `timeout` passes.
    /// With `then`, those bytes are sent (and the half-close deferred) once the first reply
    /// bytes arrive, as a client that waits for `200 Connection established` does.
    public func exchange(_ bytes: [UInt8], with address: SocketAddress, halfClose: Bool = false, then: [UInt8]? = nil, timeout: TimeAmount = .seconds(5)) throws -> [UInt8] {
        let collector = CollectHandler()
        collector.then = then
        collector.halfCloseAfterThen = halfClose && then != nil
        let done = group.next().makePromise(of: [UInt8].self)
        collector.done = done
        let channel = try ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(to: address).wait()
        if halfClose && then == nil {
            // Bytes and FIN in one event-loop turn, so the peer tends to see both in one wake-up
            // (as from `printf … | nc -N`).
            try channel.eventLoop.submit {
                if !bytes.isEmpty { channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil) }
                channel.close(mode: .output, promise: nil)
            }.wait()
        } else if !bytes.isEmpty {
            try channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).wait()
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        let result = try done.futureResult.wait()
        timer.cancel()
        return result
    }
}

private final class OriginHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = Self.unwrapInboundIn(data) else {
            if case .end = Self.unwrapInboundIn(data) { context.flush() }
            return
        }
        let host = head.headers.first(name: "host") ?? "-"
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var body = context.channel.allocator.buffer(capacity: 0)
        if host.hasPrefix("aliyun.com") {
            status = .movedPermanently
            headers.add(name: "location", value: "https://www.aliyun.com/")
            body.writeString("moved\n")
        } else if head.uri.hasPrefix("/bytes/"), let n = Int(head.uri.dropFirst(7)) {
            status = .ok
            body.writeRepeatingByte(UInt8(ascii: "x"), count: n)
        } else {
            status = .ok
            body.writeString("host=\(host)\n")
        }
        headers.add(name: "content-length", value: String(body.readableBytes))
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }
}

private final class ScriptedOriginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let reply: String
    private let close: Bool
    private var head: [UInt8] = []

    init(reply: String, close: Bool) {
        self.reply = reply
        self.close = close
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        head += Array(Self.unwrapInboundIn(data).readableBytesView)
        while let end = head.firstRange(of: Array("\r\n\r\n".utf8)) {
            head.removeSubrange(..<end.upperBound)
            let written = context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: reply)))
            if close {
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
        }
    }
}

private final class UpgradeOriginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var head: [UInt8] = []
    private var upgraded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(Self.unwrapInboundIn(data).readableBytesView)
        if upgraded {
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            return
        }
        head += bytes
        guard let end = head.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        upgraded = true
        let reply = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello-from-origin;"
        var out = context.channel.allocator.buffer(string: reply)
        out.writeBytes(head[end.upperBound...])
        context.writeAndFlush(Self.wrapOutboundOut(out), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let banner: String?
    init(banner: String?) { self.banner = banner }

    func channelActive(context: ChannelHandlerContext) {
        if let banner {
            context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: banner)), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
    }
}

private final class CollectHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received: [UInt8] = []
    var done: EventLoopPromise<[UInt8]>?
    var then: [UInt8]?
    var halfCloseAfterThen = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += Self.unwrapInboundIn(data).readableBytesView
        if let then {
            self.then = nil
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: then)), promise: nil)
            if halfCloseAfterThen { context.close(mode: .output, promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done?.succeed(received)
    }
}

/// A minimal TLS 1.2 ClientHello with an SNI extension (RFC 8446 §4.1.2, RFC 6066 §3).
public func clientHello(serverName: String) -> [UInt8] {
    let name = Array(serverName.utf8)
    var sni: [UInt8] = [0x00]  // host_name
    sni += be16(name.count) + name
    let sniList = be16(sni.count) + sni
    let ext = be16(0x0000) + be16(sniList.count) + sniList
    var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 7, count: 32)  // version, random
    body += [0x00]  // session id
    body += be16(2) + [0x13, 0x01]  // cipher suites
    body += [0x01, 0x00]  // compression methods: null
    body += be16(ext.count) + ext
    let handshake: [UInt8] = [0x01] + [0x00] + be16(body.count) + body
    return [0x16, 0x03, 0x01] + be16(handshake.count) + handshake
}

private func be16(_ n: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] }

extension Array where Element == UInt8 {
    public var text: String { String(decoding: self, as: UTF8.self) }
}

extension Loopback {
    /// A gateway with one listener of each kind on ephemeral ports: (http, tls, connect).
    public func startGateway(config yaml: String, registry: String) throws -> (http: SocketAddress, tls: SocketAddress, connect: SocketAddress) {
        let runtime = try Self.runtime(config: yaml, registry: registry, role: .gateway)
        runtimes.append(runtime)
        func bind(_ proto: ListenerProtocol) throws -> SocketAddress {
            let listener = ListenerConfig(port: 0, protocol: proto, address: "127.0.0.1")
            let channel = try self.group.next().makeFutureWithTask {
                try await GatewayListener.bind(listener, group: self.group, runtime: runtime)
            }.wait()
            self.adopt(channel)
            return channel.localAddress!
        }
        return (try bind(.http), try bind(.tls), try bind(.connect))
    }
}
