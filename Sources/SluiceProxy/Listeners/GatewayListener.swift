import Logging
import NIOCore
import NIOPosix
import SluiceCore

/// The egress gateway's listeners: HTTP (routed by Host per request), TLS (routed by SNI,
/// passed through untouched) and HTTP CONNECT tunnels.
enum GatewayListener {
    /// Binds one configured listener; a failure is a `ListenerBindError` naming it.
    static func bind(
        _ listener: ListenerConfig,
        group: any EventLoopGroup,
        runtime: ProxyRuntime
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: runtime.logger))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try runtime.connections.admit(channel, runtime: runtime)
                    guard let local = channel.localAddress else { throw ChannelError.inputClosed }
                    let connection = DownstreamConnection(originalDestination: local, remote: channel.remoteAddress)
                    switch listener.protocol {
                    case .http:
                        // HTTP/1 or HTTP/2 (h2c prior knowledge), told apart by the first bytes.
                        try channel.pipeline.syncOperations.addHandler(HTTPVersionSniffer(runtime: runtime, connection: connection))
                    case .tls:
                        try channel.pipeline.syncOperations.addHandler(SniffHandler(runtime: runtime, connection: connection))
                    case .connect:
                        try ConnectServerHandler.install(on: channel, runtime: runtime, connection: connection)
                    }
                }
            }
            .bind("gateway \(listener.protocol.rawValue)", host: listener.address, port: listener.port)
    }
}
