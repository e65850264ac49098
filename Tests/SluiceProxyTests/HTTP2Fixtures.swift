import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import SluiceTestSupport
import XCTest

/// An h2c (prior knowledge) origin and client built on NIOHTTP2, for loopback tests.
extension Loopback {
    /// Answers each stream once its request ends: `:status 200`, a body naming the authority
    /// and path (under `/echo-headers…` then the request's regular fields, one per line)
    /// followed by the request body echoed, and for gRPC requests trailers
    /// `grpc-status: 0`. `/reset-early` resets before any header; `/reset-mid` sends headers
    /// and some bytes, then resets. `/bad-head` answers with a connection-specific field
    /// (`connection: close`, not valid HTTP/2) and `/bad-trailers` with a pseudo-header in
    /// its trailers: the origin's own validation is off so that it can. `/hang…` is never
    /// answered.
    func startHTTP2Origin(host: String = "127.0.0.1", port: Int = 0) throws -> SocketAddress {
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.initialSettings = [
                        HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 20),
                    ]
                    connection.headerBlockValidation = .disabled
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .server,
                        connectionConfiguration: connection,
                        streamConfiguration: .init()
                    ) { stream in
                        stream.eventLoop.makeCompletedFuture {
                            try stream.pipeline.syncOperations.addHandler(H2OriginStreamHandler())
                        }
                    }
                }
            }
            .bind(host: host, port: port).wait()
        adopt(channel)
        return channel.localAddress!
    }

    /// An h2c client connection to `address`.
    func h2Client(to address: SocketAddress) throws -> H2Client {
        let root = H2RootFrames()
        let channel = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var connection = NIOHTTP2Handler.ConnectionConfiguration()
                    connection.initialSettings = [HTTP2Setting(parameter: .enablePush, value: 0)]
                    connection.controlFrameRateLimit.maximumCount = 100_000
                    var stream = NIOHTTP2Handler.StreamConfiguration()
                    stream.streamResetFrameRateLimit.maximumCount = 100_000
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client,
                        connectionConfiguration: connection,
                        streamConfiguration: stream,
                        inboundStreamInitializer: { $0.close() }
                    )
                    try channel.pipeline.syncOperations.addHandler(root)
                }
            }
            .connect(to: address).wait()
        adopt(channel)
        let multiplexer = try channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
        }.wait()
        return H2Client(channel: channel, multiplexer: multiplexer, root: root)
    }
}

/// What a client stream received.
struct H2Response {
    var headerBlocks: [HPACKHeaders] = []
    var body: [UInt8] = []
    var reset: HTTP2ErrorCode?
    /// An error the client's stream saw (a stream-level protocol error, say).
    var error: String?

    var status: Int? { headerBlocks.first?.first(name: ":status").flatMap(Int.init) }
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The last header block (trailers, or the only block of a trailers-only answer).
    var trailers: HPACKHeaders? { headerBlocks.count > 1 ? headerBlocks.last : headerBlocks.first }
}

final class H2Client: @unchecked Sendable {  // driven from one test thread
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let root: H2RootFrames

    init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, root: H2RootFrames) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.root = root
    }

    /// Starts one request; the future completes when the stream closes.
    func start(
        authority: String, path: String = "/", method: String = "GET", extra: [(String, String)] = [],
        body: [UInt8] = [], chunk: Int = 16_384, resetAfterHeaders: Bool = false, holdOpen: Bool = false
    ) -> EventLoopFuture<H2Response> {
        let promise = channel.eventLoop.makePromise(of: H2Response.self)
        var headers = HPACKHeaders([(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)])
        for (name, value) in extra { headers.add(name: name, value: value) }
        let sendable = (headers, body, chunk, resetAfterHeaders || holdOpen, holdOpen)
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(H2ClientStreamHandler(promise: promise))
            }
        }.whenComplete { result in
            guard case .success(let stream) = result else { return promise.fail(ChannelError.ioOnClosedChannel) }
            let (headers, body, chunk, reset, holdOpen) = sendable
            stream.write(HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: body.isEmpty && !reset)), promise: nil)
            if holdOpen {
                // The request never ends: the stream stays open until the connection closes.
                stream.flush()
                return
            }
            if reset {
                stream.writeAndFlush(HTTP2Frame.FramePayload.rstStream(.cancel), promise: nil)
                return
            }
            var offset = 0
            while offset < body.count {
                let end = min(offset + chunk, body.count)
                let bytes = stream.allocator.buffer(bytes: body[offset..<end])
                stream.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(bytes), endStream: end == body.count)), promise: nil)
                offset = end
            }
            stream.flush()
        }
        return promise.futureResult
    }

    func request(authority: String, path: String = "/", method: String = "GET", extra: [(String, String)] = [], body: [UInt8] = []) throws -> H2Response {
        try start(authority: authority, path: path, method: method, extra: extra, body: body).wait()
    }
}

final class H2ClientStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    private var response = H2Response()
    private let promise: EventLoopPromise<H2Response>

    init(promise: EventLoopPromise<H2Response>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers): response.headerBlocks.append(headers.headers)
        case .data(let data): if case .byteBuffer(let bytes) = data.data { response.body += bytes.readableBytesView }
        case .rstStream(let code): response.reset = code
        default: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.succeed(response) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        response.error = "\(error)"
        context.close(promise: nil)
    }
}

/// Root-stream frames the client connection received (SETTINGS, PING, GOAWAY).
final class H2RootFrames: ChannelInboundHandler, @unchecked Sendable {  // touched on its loop, read after close
    typealias InboundIn = HTTP2Frame
    private(set) var goAway: HTTP2ErrorCode?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway(_, let code, _) = unwrapInboundIn(data).payload { goAway = code }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class H2OriginStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    private var request: HPACKHeaders?
    private var body: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var ended = false
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if request == nil { request = headers.headers }
            ended = headers.endStream
        case .data(var data):
            if case .byteBuffer(var bytes) = data.data {
                if body == nil { body = bytes } else { body!.writeBuffer(&bytes) }
            }
            ended = data.endStream
            data.endStream = false
        default:
            return
        }
        guard ended, let request else { return }
        let path = request.first(name: ":path") ?? ""
        if path == "/reset-early" {
            context.writeAndFlush(wrapOutboundOut(.rstStream(.internalError)), promise: nil)
            return
        }
        // `/hang…`: never answered (a route timeout's test).
        if path.hasPrefix("/hang") { return }
        let grpc = request.first(name: "content-type")?.hasPrefix("application/grpc") ?? false
        var out = context.channel.allocator.buffer(string: "authority=\(request.first(name: ":authority") ?? "-") path=\(path)\n")
        if path.hasPrefix("/echo-headers") {
            // Every regular field of the request, one per line.
            for (name, value, _) in request where !name.hasPrefix(":") { out.writeString("\(name): \(value)\n") }
        }
        if var body { out.writeBuffer(&body) }
        var head = HPACKHeaders([(":status", "200"), ("content-type", grpc ? "application/grpc" : "text/plain")])
        if path == "/bad-head" { head.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.headers(.init(headers: head))), promise: nil)
        if path == "/reset-mid" {
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(out)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.rstStream(.internalError)), promise: nil)
            return
        }
        if path == "/bad-trailers" {
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(out)))), promise: nil)
            let trailers = HPACKHeaders([(":path", "/not-a-trailer"), ("x-trailer", "1")])
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
            return
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(out), endStream: !grpc))), promise: nil)
        if grpc {
            let trailers = HPACKHeaders([("grpc-status", "0"), ("grpc-message", "ok")])
            context.write(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
        }
        context.flush()
    }
}
