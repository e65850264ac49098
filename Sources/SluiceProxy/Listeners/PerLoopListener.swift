#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import NIOCore
import NIOPosix

/// A traffic listener as one listening socket per event loop, all on the same address with
/// `SO_REUSEPORT` (what Envoy's `enable_reuse_port`, on by default on Linux, and HAProxy's
/// per-thread listeners do): the kernel spreads new connections over the sockets, and each
/// loop accepts onto itself, so no accepted connection crosses threads on its way in.
///
/// Every socket has the same listener features:
/// - `AcceptBackoffHandler`: when `accept` fails for lack of resources (EMFILE, ENFILE,
///   ENOBUFS, ENOMEM) the socket stops accepting for a second instead of retrying at once
///   (`ServerBootstrap.bind` does not add it; only its async variant does); other failures
///   (a client that reset before `accept`, ECONNABORTED) pause nothing;
/// - `AcceptErrorLogger`: such failures logged, at most once a second;
/// - `DirectAcceptHandler`: `setUp` runs synchronously on the accepting loop; the
///   bootstrap's child initializer, which does the same through a future, remains for what
///   that handler passes on;
/// - `TCP_NODELAY` on the listening socket: Linux copies it to every accepted one, so
///   accepted connections need no `setsockopt` of their own for it; backlog 1024,
///   `SO_REUSEADDR`, up to 16 accepts per wake-up.
/// Stopping is closing every returned channel (`ProxyServer.drain` closes the traffic ones).
enum PerLoopListener {
    /// Binds `host`:`port` once per loop of `group` (the first bind picks the port when
    /// `port` is 0; the others take the same). A failure closes what was bound and is a
    /// `ListenerBindError` naming `listener`.
    static func bind(
        _ listener: String,
        host: String,
        port: Int,
        group: any EventLoopGroup,
        logger: Logger,
        setUp: @escaping @Sendable (any Channel) throws -> Bool,
        initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) async throws -> [any Channel] {
        var bound: [any Channel] = []
        var boundPort = port
        do {
            for loop in group.makeIterator() {
                let channel = try await Self.bootstrap(on: loop, logger: logger, setUp: setUp, initialize: initialize)
                    .bind(listener, host: host, port: boundPort)
                bound.append(channel)
                if boundPort == 0, let chosen = channel.localAddress?.port { boundPort = chosen }
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw error
        }
        return bound
    }

    /// One loop's listening socket: its accepted connections stay on `loop`.
    private static func bootstrap(
        on loop: any EventLoop,
        logger: Logger,
        setUp: @escaping @Sendable (any Channel) throws -> Bool,
        initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> ServerBootstrap {
        ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .serverChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: 16)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(AcceptBackoffHandler(backoffProvider: Self.backoff))
                    try sync.addHandler(AcceptErrorLogger(logger: logger))
                    try sync.addHandler(DirectAcceptHandler(setUp: setUp))
                }
            }
            // No childChannelOption: applied through a future per connection; `setUp` and
            // `initialize` set what the connection needs.
            .childChannelInitializer(initialize)
    }

    /// How long a listening socket stops accepting after `error`: a second when the process
    /// or the system is out of descriptors or memory, else not at all.
    static func backoff(_ error: IOError) -> TimeAmount? {
        switch error.errnoCode {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .seconds(1)
        default: return nil
        }
    }
}
