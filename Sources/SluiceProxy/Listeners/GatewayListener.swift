import Logging
package import NIOCore
import NIOPosix
import NIOSSL
package import SluiceCore

/// The egress gateway's listeners: HTTP (routed by Host per request), TLS (routed by SNI,
/// passed through untouched) and HTTP CONNECT tunnels. A listener with `tls: ISTIO_MUTUAL`
/// first terminates mutual TLS, then speaks its protocol on the plaintext inside (a TLS
/// listener sniffs it: HTTP is routed by Host, the app's own TLS by its inner SNI); one whose
/// Gateway server says SIMPLE or MUTUAL terminates with that server's certificate files. Where
/// the Gateway servers on a port differ in TLS, each connection gets the server its SNI names.
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
                    if listener.selectsTLSServerByName {
                        let dispatch = ServerNameDispatchHandler(runtime: runtime, port: listener.port, servers: listener.tlsServers) { server in
                            try Self.installTLS(server.mode, files: server.files, of: listener, on: channel, runtime: runtime, connection: connection, next: next)
                        }
                        try channel.pipeline.syncOperations.addHandler(dispatch)
                    } else {
                        try Self.installTLS(
                            listener.tls, files: listener.serverTLSFiles, of: listener, on: channel, runtime: runtime, connection: connection, next: next)
                    }
                }
            }
            .bind("gateway \(listener.protocol.rawValue)", host: listener.address, port: listener.port)
    }

    /// The connection's handling for TLS `mode`: terminated ISTIO_MUTUAL, SIMPLE or MUTUAL with
    /// `files` (then `next` on the plaintext), or the listener's protocol on the bytes as they are.
    private static func installTLS(
        _ mode: ServerTLSMode,
        files: ServerTLSFiles?,
        of listener: ListenerConfig,
        on channel: any Channel,
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        next: @escaping (any Channel, any ChannelHandler, DownstreamConnection) throws -> Void
    ) throws {
        if mode == .istioMutual {
            guard let certificates = runtime.certificates else { throw MeshTLSUnavailable() }
            try MeshTLSServer.install(
                on: channel, runtime: runtime, connection: connection, credentials: certificates.credentials, next: next)
        } else if mode.usesServerFiles, let files {
            let context: NIOSSLContext
            do {
                context = try runtime.connector.fileContexts.serverContext(files, mode: mode)
            } catch {
                runtime.logger.error(
                    "gateway server certificate unusable; connection closed",
                    metadata: ["port": "\(listener.port)", "mode": "\(mode.rawValue)", "error": "\(error)"])
                throw error
            }
            try MeshTLSServer.terminate(
                on: channel, runtime: runtime, connection: connection, context: context, verifier: nil,
                requiredSubjectAltNames: mode == .mutual ? files.subjectAltNames : [], next: next)
        } else {
            try Self.installProtocol(listener.protocol, on: channel, after: nil, runtime: runtime, connection: connection)
        }
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
