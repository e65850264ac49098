import Logging
package import NIOCore
import NIOPosix
import NIOSSL
package import SluiceCore

/// The egress gateway's listeners: HTTP (routed by Host per request), TLS (routed by SNI,
/// passed through untouched) and HTTP CONNECT tunnels. A listener with `tls: ISTIO_MUTUAL`
/// first terminates mutual TLS, then speaks its protocol on the plaintext inside (a TLS
/// listener sniffs it: HTTP is routed by Host, the app's own TLS by its inner SNI); one whose
/// Gateway server says SIMPLE or MUTUAL terminates with that server's certificate files.
package enum GatewayListener {
    /// Binds one configured listener; a failure is a `ListenerBindError` naming it.
    package static func bind(
        _ listener: ListenerConfig,
        group: any EventLoopGroup,
        runtime: ProxyRuntime
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Accept back-off on resource errors, as the sidecar's listener (PerLoopListener).
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(backoffProvider: PerLoopListener.backoff))
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
                    let next = { (channel: any Channel, handshake: any ChannelHandler, connection: DownstreamConnection) in
                        try Self.installProtocol(listener.protocol, on: channel, after: handshake, runtime: runtime, connection: connection)
                    }
                    if listener.tls == .istioMutual {
                        guard let certificates = runtime.certificates else { throw MeshTLSUnavailable() }
                        try MeshTLSServer.install(
                            on: channel, runtime: runtime, connection: connection, credentials: certificates.credentials, next: next)
                    } else if listener.tls.usesServerFiles, let files = listener.serverTLSFiles {
                        let context: NIOSSLContext
                        do {
                            context = try runtime.connector.fileContexts.serverContext(files, mode: listener.tls)
                        } catch {
                            runtime.logger.error(
                                "gateway server certificate unusable; connection closed",
                                metadata: ["port": "\(listener.port)", "mode": "\(listener.tls.rawValue)", "error": "\(error)"])
                            throw error
                        }
                        try MeshTLSServer.terminate(on: channel, runtime: runtime, connection: connection, context: context, verifier: nil, next: next)
                    } else {
                        try Self.installProtocol(listener.protocol, on: channel, after: nil, runtime: runtime, connection: connection)
                    }
                }
            }
            .bind("gateway \(listener.protocol.rawValue)", host: listener.address, port: listener.port)
    }

    /// The listener protocol's handlers, at the end of the pipeline or after `handler`.
    private static func installProtocol(
        _ listenerProtocol: ListenerProtocol,
        on channel: any Channel,
        after handler: (any ChannelHandler)?,
        runtime: ProxyRuntime,
        connection: DownstreamConnection
    ) throws {
        let sync = channel.pipeline.syncOperations
        switch listenerProtocol {
        case .http:
            // HTTP/1 or HTTP/2 (h2c prior knowledge), told apart by the first bytes.
            let sniff = HTTPVersionSniffer(runtime: runtime, connection: connection)
            if let handler { try sync.addHandler(sniff, position: .after(handler)) } else { try sync.addHandler(sniff) }
        case .tls:
            let sniff = SniffHandler(runtime: runtime, connection: connection)
            if let handler { try sync.addHandler(sniff, position: .after(handler)) } else { try sync.addHandler(sniff) }
        case .connect:
            try ConnectServerHandler.install(on: channel, runtime: runtime, connection: connection)
        }
    }
}

/// A listener wants ISTIO_MUTUAL but the gateway runs without certificates (refused at
/// start-up; this only guards the invariant).
struct MeshTLSUnavailable: Error {}
