import NIOCore
import NIOHTTP2
import SluiceCore

/// What the streams of one downstream HTTP/2 connection share: its identity, its upstream
/// pool. Confined to the connection's event loop.
final class HTTP2DownstreamConnection {
    let runtime: ProxyRuntime
    let connection: DownstreamConnection
    let pool: HTTP2UpstreamPool
    let parent: any Channel

    init(runtime: ProxyRuntime, connection: DownstreamConnection, parent: any Channel) {
        self.runtime = runtime
        self.connection = connection
        self.parent = parent
        self.pool = HTTP2UpstreamPool(runtime: runtime, eventLoop: parent.eventLoop)
    }
}

/// Terminates HTTP/2 (h2c prior knowledge) on a downstream channel: NIOHTTP2 server side,
/// bounded as `HTTP2Limits` says, one `HTTP2StreamProxyHandler` per client stream.
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
        configuration.targetWindowSize = limits.initialWindowSize
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
        let shared = HTTP2DownstreamConnection(runtime: runtime, connection: connection, parent: channel)
        let sharedBound = NIOLoopBound(shared, eventLoop: channel.eventLoop)
        var streamConfiguration = NIOHTTP2Handler.StreamConfiguration()
        streamConfiguration.targetWindowSize = limits.initialWindowSize
        // Rapid reset (CVE-2023-44487): NIOHTTP2 counts client RST_STREAMs and answers GOAWAY
        // ENHANCE_YOUR_CALM past the limit.
        streamConfiguration.streamResetFrameRateLimit.maximumCount = limits.maxResetsPerWindow
        streamConfiguration.streamResetFrameRateLimit.windowLength = .seconds(limits.resetWindowSeconds)
        let http2 = NIOHTTP2Handler(
            mode: .server,
            eventLoop: channel.eventLoop,
            connectionConfiguration: Self.connectionConfiguration(limits),
            streamConfiguration: streamConfiguration
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2StreamProxyHandler(shared: sharedBound.value))
            }
        }
        let sync = channel.pipeline.syncOperations
        if let handler {
            try sync.addHandler(http2, position: .after(handler))
        } else {
            try sync.addHandler(http2)
        }
        try sync.addHandler(HTTP2ConnectionErrorHandler(), position: .after(http2))
        channel.closeFuture.whenComplete { _ in sharedBound.value.pool.closeAll() }
        // Streams have their own windows: the connection reads whenever it can.
        try channel.syncOptions?.setOption(.autoRead, value: true)
    }
}

/// Closes the connection on a protocol error NIOHTTP2 raised (it has already sent GOAWAY).
final class HTTP2ConnectionErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
