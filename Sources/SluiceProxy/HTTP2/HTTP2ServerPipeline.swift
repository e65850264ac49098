import NIOCore
import NIOHTTP2
import SluiceCore

/// Terminates HTTP/2 (h2c prior knowledge) on a downstream channel: NIOHTTP2 server side,
/// bounded as `HTTP2Limits` says, without stream channels: `HTTP2DownstreamRelay` takes the
/// connection's frames and relays each stream itself.
enum HTTP2ServerPipeline {
    static func connectionConfiguration(_ limits: HTTP2Limits) -> NIOHTTP2Handler.ConnectionConfiguration {
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderListSize),
            HTTP2Setting(parameter: .initialWindowSize, value: limits.initialWindowSize),
        ]
        configuration.maximumSequentialContinuationFrames = limits.maxSequentialContinuationFrames
        configuration.maximumBufferedControlFrames = limits.maxBufferedControlFrames
        configuration.maximumSequentialEmptyDataFrames = limits.maxSequentialEmptyDataFrames
        configuration.controlFrameRateLimit.maximumCount = limits.maxControlFramesPerWindow
        configuration.controlFrameRateLimit.windowLength = .seconds(limits.controlWindowSeconds)
        return configuration
    }

    /// Installs after `handler` (the sniffer, which then replays the preface and leaves).
    static func install(
        on channel: any Channel,
        after handler: (any ChannelHandler)?,
        runtime: ProxyRuntime,
        connection: DownstreamConnection,
        limits: HTTP2Limits = HTTP2Limits()
    ) throws {
        var streamConfiguration = NIOHTTP2Handler.StreamConfiguration()
        // Rapid reset (CVE-2023-44487): NIOHTTP2 counts client RST_STREAMs and answers GOAWAY
        // ENHANCE_YOUR_CALM past the limit.
        streamConfiguration.streamResetFrameRateLimit.maximumCount = limits.maxResetsPerWindow
        streamConfiguration.streamResetFrameRateLimit.windowLength = .seconds(limits.resetWindowSeconds)
        let http2 = NIOHTTP2Handler(
            mode: .server,
            connectionConfiguration: Self.connectionConfiguration(limits),
            streamConfiguration: streamConfiguration
        )
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
        // Streams have their own windows: the connection reads whenever it can.
        try channel.syncOptions?.setOption(.autoRead, value: true)
    }
}
