import NIOCore
import SluiceCore

/// Terminates HTTP/2 (h2c prior knowledge) on a downstream channel: Sluice's own codec
/// (`HTTP2WireHandler`) server side, bounded as `HTTP2Limits` says, without stream channels:
/// `HTTP2DownstreamRelay` takes the connection's frames and relays each stream itself.
enum HTTP2ServerPipeline {
    /// Installs after `handler` (the sniffer, which then replays the preface and leaves).
    static func install(
        on channel: any Channel,
        after handler: (any ChannelHandler)?,
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        limits: HTTP2Limits = HTTP2Limits()
    ) throws {
        // Every HTTP2Limits bound (header-list size, CONTINUATION and control-frame floods,
        // rapid reset, empty DATA, buffered control frames) is enforced by the codec.
        let http2 = HTTP2WireHandler(mode: .server, limits: limits)
        let relay = HTTP2DownstreamRelay(
            runtime: runtime, connection: connection, eventLoop: channel.eventLoop, window: limits.initialWindowSize
        )
        let sync = channel.pipeline.syncOperations
        if let handler {
            try sync.addHandler(http2, position: .after(handler))
        } else {
            try sync.addHandler(http2)
        }
        try sync.addHandler(relay, position: .after(http2))
        http2.events = relay
        // Streams have their own windows: the connection reads whenever it can.
        try channel.syncOptions?.setOption(.autoRead, value: true)
    }
}
