import Logging
package import NIOCore
import NIOPosix
import SluiceCore

/// The sidecar's capture listener (127.0.0.1:15001 and [::1]:15001): every connection the
/// iptables rules redirected arrives here. It recovers the original destination, refuses
/// loops, and hands the connection to the sniffer.
///
/// The whole outbound path, in the order a connection meets it (what linkerd's `mk_sidecar`
/// shows in one function):
///
/// 1. **accept** — `bind` (a listening socket per event loop, `PerLoopListener`): sluice-init's
///    REDIRECT brought the app's connection here; `DirectAcceptHandler` sets it up at once.
/// 2. **admit** — `ConnectionTracker.admit`: counted, refused while draining.
/// 3. **original destination** — `OriginalDestination.read` (`SO_ORIGINAL_DST`).
/// 4. **loop guard** — `isSameEndpoint`: a connection addressed to this listener was not redirected.
/// 5. **decide before reading** — `Policy.decideBeforeReading`: an opaque port is forwarded at
///    once (`TCPForwarder`), so server-first protocols work.
/// 6. **sniff** — `SniffHandler` + `ProtocolDetector`: TLS (SNI), HTTP/1 or opaque, bounded in
///    bytes and time.
/// 7. **decide** — `Policy.decide`: TLS and opaque once per connection (`TCPForwarder`), HTTP once
///    per request (`HTTPProxyPipeline` → `HTTPProxyHandler`); an app's CONNECT by
///    `Policy.decide(tunnelTo:)`.
/// 8. **forward** — `UpstreamConnector.connect`: direct (original destination, DNS, endpoints)
///    or through the egress gateway (istio or CONNECT); `GlueHandler` joins the two channels.
/// 9. **log and count** — `ProxyRuntime.completedRequest` / `completedConnection`: one JSON
///    access-log line and Istio's metrics per request or connection.
package enum OutboundListener {
    /// Binds one address, one listening socket per event loop (`PerLoopListener`); a failure
    /// is a `ListenerBindError` naming it. Callers treat an IPv6 bind failure as "no IPv6 in
    /// this pod".
    static func bind(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        runtime: ProxyRuntime
    ) async throws -> [any Channel] {
        try await PerLoopListener.bind(
            "outbound", host: host, port: port, group: group, logger: runtime.logger,
            setUp: { channel in try Self.setUp(channel: channel, runtime: runtime) },
            initialize: { channel in Self.initialize(channel: channel, runtime: runtime) }
        )
    }

    /// Steps 2–5 of the path above for one accepted connection, synchronously on its event
    /// loop (`DirectAcceptHandler`); steps 6–9 follow in the handlers `route` installs. False
    /// (nothing done) for a channel without synchronous options: `initialize` sets it up.
    static func setUp(channel: any Channel, runtime: ProxyRuntime) throws -> Bool {
        guard let options = channel.syncOptions else { return false }
        do {
            try Self.setChildOptions(options)
        } catch {
            Self.refuseWithoutOptions(channel, error: error, runtime: runtime)
            throw error
        }
        try Self.accept(channel: channel, runtime: runtime)
        return true
    }

    /// The same through the bootstrap's child initializer, for a connection the direct path
    /// passed on. Synchronous where the channel has synchronous options (the future returned
    /// is the loop's cached succeeded one).
    static func initialize(channel: any Channel, runtime: ProxyRuntime) -> EventLoopFuture<Void> {
        guard channel.syncOptions != nil else {
            // A channel without synchronous options gets the same options through the
            // asynchronous path, then the rest: they are never skipped.
            return Self.setChildOptions(channel).flatMapErrorThrowing { error in
                Self.refuseWithoutOptions(channel, error: error, runtime: runtime)
                channel.close(promise: nil)
                throw error
            }.flatMapThrowing {
                do {
                    try Self.accept(channel: channel, runtime: runtime)
                } catch {
                    channel.close(promise: nil)
                    throw error
                }
            }
        }
        do {
            _ = try Self.setUp(channel: channel, runtime: runtime)
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    private static func refuseWithoutOptions(_ channel: any Channel, error: any Error, runtime: ProxyRuntime) {
        runtime.logger.warning(
            "refusing connection: its socket options could not be set",
            metadata: ["remote": "\(channel.remoteAddress?.logDescription ?? "-")", "error": "\(error)"]
        )
    }

    /// Steps 2–5 once the connection's options are set; a throw refuses the connection (the
    /// caller closes it).
    private static func accept(channel: any Channel, runtime: ProxyRuntime) throws {
        try runtime.connections.admit(channel, runtime: runtime)
        let destination: SocketAddress
        do {
            destination = try OriginalDestination.read(from: channel).address
        } catch {
            runtime.logger.warning(
                "refusing connection without an original destination",
                metadata: ["remote": "\(channel.remoteAddress?.logDescription ?? "-")", "error": "\(error)"]
            )
            throw error
        }
        // Envoy's original_dst rule: a connection whose original destination is this very
        // listener was not redirected (someone dialled :15001 directly) — a loop.
        if let local = channel.localAddress, Self.isSameEndpoint(local, destination) {
            runtime.logger.warning(
                "refusing connection addressed to the proxy itself (loop)",
                metadata: ["remote": "\(channel.remoteAddress?.logDescription ?? "-")"]
            )
            throw LoopDetected()
        }
        let connection = DownstreamConnection(originalDestination: destination, remote: channel.remoteAddress)
        try Self.route(channel: channel, connection: connection, runtime: runtime)
    }

    /// What `childChannelOption` would set, set synchronously: the app's half-close is kept
    /// (a client that sends FIN after its request still gets the response). Nagle is off
    /// without a call per connection: the listening socket has `TCP_NODELAY`, which Linux
    /// copies to every socket it accepts (`PerLoopListener`).
    static func setChildOptions(_ options: any NIOSynchronousChannelOptions) throws {
        try options.setOption(.allowRemoteHalfClosure, value: true)
    }

    /// The same option through `Channel.setOption`, for a channel without `syncOptions`.
    static func setChildOptions(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.setOption(.allowRemoteHalfClosure, value: true)
    }

    /// Where the policy can decide from the destination alone (an opaque port), the connection
    /// is forwarded without sniffing, so server-first protocols (SMTP, MySQL, SSH banners)
    /// work; everything else is sniffed and decided from its first bytes.
    package static func route(channel: any Channel, connection: DownstreamConnection, runtime: ProxyRuntime) throws {
        let config = runtime.config
        if let ip = connection.destinationIP, let port = connection.destinationPort,
            let decision = config.policy.decideBeforeReading(destination: ip, port: port)
        {
            if case .forward(let target) = decision.action {
                let forwarder = TCPForwarder(
                    runtime: runtime,
                    connection: connection,
                    decision: decision,
                    serverName: nil,
                    config: config
                )
                // Dial once the connection is active: an upstream that connects before the
                // downstream is registered would find it "not active" and be dropped.
                try channel.pipeline.syncOperations.addHandler(ReadHoldHandler { channel in
                    forwarder.forward(
                        downstream: channel,
                        target: target,
                        buffered: channel.allocator.buffer(capacity: 0)
                    ) {
                        ReadHoldHandler.release(on: channel)
                    }
                })
                return
            }
        }
        try channel.pipeline.syncOperations.addHandler(
            SniffHandler(runtime: runtime, connection: connection), name: SniffHandler.pipelineName)
    }

    static func isSameEndpoint(_ a: SocketAddress, _ b: SocketAddress) -> Bool {
        a.port == b.port && a.ipAddress == b.ipAddress
    }
}

/// Marker error: the connection was addressed to the listener itself.
struct LoopDetected: Error, CustomStringConvertible {
    var description: String { "connection addressed to the proxy's own listener" }
}

/// Holds reads (and keeps anything already read) while an upstream connects, then replays
/// and leaves. Used where no sniffing is needed.
///
/// The bytes and the EOF are kept in a `HeldInbound`, the shared hold-then-replay helper.
/// Reads are not kept in a `ReadHoldStateMachine`: that one holds a `read()` while a
/// condition lasts and re-checks it; here every `read()` is held, unconditionally, until
/// `release(on:)` takes the handler out and issues the one read that starts the connection.
final class ReadHoldHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private var held = HeldInbound()
    private let onActive: (any Channel) -> Void

    /// - Parameter onActive: runs once the channel is active (it starts the upstream dial).
    init(onActive: @escaping (any Channel) -> Void) {
        self.onActive = onActive
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        self.onActive(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        self.held.append(&chunk)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.held.holdInputClosed()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        // Held until release: nobody forwards yet.
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let replay = self.held.takeForReplay()
        if let bytes = replay.bytes {
            context.fireChannelRead(self.wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        if replay.inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.leavePipeline(removalToken: removalToken)
    }

    /// Removes the holder from `channel` and starts reading.
    static func release(on channel: any Channel) {
        let sync = channel.pipeline.syncOperations
        if let handler = try? sync.handler(type: ReadHoldHandler.self) {
            sync.removeHandler(handler, promise: nil)
        }
        channel.read()
    }
}
