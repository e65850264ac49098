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
        let limits = runtime.config.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maxRequestHeadBytes
        decoderLimits.maxHeaderListSize = limits.maxRequestHeadBytes
        decoderLimits.maxHeaderFieldCount = limits.maxRequestHeaders
        // NIO's own error handler would answer every parse error 400; the proxy handler
        // answers 431 for an oversized head and logs the DPE itself.
        let position: ChannelPipeline.SynchronousOperations.Position = handler.map { .after($0) } ?? .last
        if let handler {
            // The proxy first, then the codec in front of it, both directly after the sniffer.
            try sync.addHandler(proxy, position: .after(handler))
        }
        // No outbound header validation: response headers come from the upstream decoder
        // (already validated as parsed) or from us; re-scanning them cost ~6% of the CPU.
        try sync.configureHTTPServerPipeline(
            position: position,
            withPipeliningAssistance: false,  // the proxy handler queues pipelined requests itself
            withErrorHandling: false,
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: decoderLimits
        )
        if handler == nil {
            try sync.addHandler(proxy)
        }
    }
}
