import NIOCore
import NIOHTTP1

/// Puts the HTTP/1 server codec and the proxy handler on a downstream channel.
enum HTTPProxyPipeline {
    /// Installs after `handler` (the sniffer, which then leaves) or at the end of the pipeline.
    static func install(
        on channel: any Channel,
        after handler: (any ChannelHandler)?,
        runtime: ProxyRuntime,
        connection: DownstreamConnection
    ) throws {
        let sync = channel.pipeline.syncOperations
        let proxy = HTTPProxyHandler(runtime: runtime, connection: connection)
        if let handler {
            // Added in reverse so each lands directly after the sniffer, giving codec → proxy order.
            try sync.addHandler(proxy, position: .after(handler))
            try sync.configureHTTPServerPipeline(position: .after(handler), withErrorHandling: true)
        } else {
            try sync.configureHTTPServerPipeline(withErrorHandling: true)
            try sync.addHandler(proxy)
        }
    }
}
