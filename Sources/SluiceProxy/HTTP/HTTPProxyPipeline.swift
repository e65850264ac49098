import NIOCore

/// Puts the HTTP proxy handler on a downstream channel. It frames HTTP/1 itself (no codec
/// handlers in front of it): bytes in, bytes out.
enum HTTPProxyPipeline {
    /// Installs after `handler` (the sniffer, which then leaves) or at the end of the pipeline.
    static func install(
        on channel: any Channel,
        after handler: (any ChannelHandler)?,
        runtime: ProxyRuntime,
        connection: DownstreamConnection
    ) throws {
        let proxy = HTTPProxyHandler(runtime: runtime, connection: connection)
        let sync = channel.pipeline.syncOperations
        if let handler {
            try sync.addHandler(proxy, name: HTTPProxyHandler.pipelineName, position: .after(handler))
        } else {
            try sync.addHandler(proxy, name: HTTPProxyHandler.pipelineName)
        }
    }
}
