import NIOCore
import NIOEmbedded
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// Each HTTP handler alone on an `EmbeddedChannel`, its peer a test double implementing the
/// protocol between them (`HTTPUpstreamSink` / `HTTPUpstream`, HTTPUpstreamPeers.swift). The
/// real pair is run over loopback in SidecarLoopbackTests and HTTPFramingLoopbackTests.
final class UpstreamHTTPHandlerAloneTests: XCTestCase {
    /// The downstream as the upstream handler sees it: records what it is handed.
    private final class RecordingSink: HTTPUpstreamSink {
        var isWritable = true
        var parts: [String] = []
        var readCompletes = 0
        var protocolErrors: [HTTP1ParseError] = []
        var closes = 0
        var writableAgain = 0

        func upstreamResponse(_ part: UpstreamResponsePart, from upstream: any HTTPUpstream) {
            switch part {
            case .head(let head): self.parts.append("head \(head.status)")
            case .body(let body): self.parts.append("body \(String(buffer: body))")
            case .end: self.parts.append("end")
            }
        }
        func upstreamReadComplete(from upstream: any HTTPUpstream) { self.readCompletes += 1 }
        func upstreamBecameWritable(_ upstream: any HTTPUpstream) { self.writableAgain += 1 }
        func upstreamProtocolError(_ upstream: any HTTPUpstream, error: HTTP1ParseError) { self.protocolErrors.append(error) }
        func upstreamClosed(_ upstream: any HTTPUpstream) { self.closes += 1 }
    }

    /// Counts the `read()`s that pass the upstream handler towards the socket.
    private final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    private func upstream() throws -> (UpstreamHTTPHandler, EmbeddedChannel, ReadCounter) {
        let ip = try XCTUnwrap(IPAddress("192.0.2.40"))
        let handler = UpstreamHTTPHandler(
            target: .originalDestination(ip, 80), tls: nil,
            remote: try SocketAddress(ipAddress: "192.0.2.40", port: 80),
            limits: HTTP1Limits()
        )
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.40", port: 80)).wait()
        return (handler, channel, counter)
    }

    func testARequestGoesOutInOnePassAndItsResponseReachesTheSinkPartByPart() throws {
        let (handler, channel, _) = try upstream()
        defer { _ = try? channel.finish() }
        let sink = RecordingSink()
        handler.beginExchange(for: sink, toHEAD: false, stripChunkFraming: false)
        XCTAssertFalse(handler.isIdleAndReusable, "busy with the exchange")
        handler.send(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        handler.send(ByteBuffer(string: "host: a.test\r\n\r\n"))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "not flushed yet")
        handler.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "GET / HTTP/1.1\r\n")
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "host: a.test\r\n\r\n")

        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"))
        try channel.writeInbound(ByteBuffer(string: "lo"))
        XCTAssertEqual(sink.parts, ["head 200", "body hel", "body lo", "end"])
        XCTAssertEqual(sink.readCompletes, 2, "one flush of what was relayed per read")
        handler.responseEnded()
        XCTAssertTrue(handler.isIdleAndReusable, "kept for the next request")
    }

    func testReadsWaitWhileTheSinkCannotTakeMore() throws {
        let (handler, channel, counter) = try upstream()
        defer { _ = try? channel.finish() }
        let sink = RecordingSink()
        handler.beginExchange(for: sink, toHEAD: false, stripChunkFraming: false)
        sink.isWritable = false
        let before = counter.reads
        channel.read()
        XCTAssertEqual(counter.reads, before, "held")
        sink.isWritable = true
        handler.resumeReading()
        XCTAssertEqual(counter.reads, before + 1, "the held read, replayed once")
        handler.resumeReading()
        XCTAssertEqual(counter.reads, before + 1)
    }

    func testBytesNobodyAskedForCloseTheConnection() throws {
        let (handler, channel, _) = try upstream()
        let sink = RecordingSink()
        handler.beginExchange(for: sink, toHEAD: false, stripChunkFraming: false)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n"))
        handler.responseEnded()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"))
        XCTAssertEqual(sink.parts, ["head 204", "end"])
        XCTAssertFalse(channel.isActive, "its framing can no longer be trusted")
        XCTAssertFalse(handler.isReusable)
        XCTAssertEqual(sink.closes, 1)
    }

    func testAResponseThatCannotBeFramedIsAProtocolError() throws {
        let (handler, channel, _) = try upstream()
        let sink = RecordingSink()
        handler.beginExchange(for: sink, toHEAD: false, stripChunkFraming: false)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"))
        XCTAssertEqual(sink.protocolErrors.count, 1)
        XCTAssertEqual(sink.parts, [])
        XCTAssertFalse(channel.isActive)
    }
}

/// The event loop's pool of idle upstream connections, keyed by target and TLS setting.
final class UpstreamPoolKeyTests: XCTestCase {
    private func idleUpstream(tls: UpstreamTLS?) throws -> UpstreamHTTPHandler {
        let ip = try XCTUnwrap(IPAddress("192.0.2.40"))
        let handler = UpstreamHTTPHandler(
            target: .originalDestination(ip, 80), tls: tls,
            remote: try SocketAddress(ipAddress: "192.0.2.40", port: 80), limits: HTTP1Limits())
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.40", port: 80)).wait()
        addTeardownBlock { _ = try? channel.finish() }
        return handler
    }

    func testAnIdleConnectionIsTakenOnlyForItsOwnTLSSetting() throws {
        let pool = UpstreamPool()
        let target = UpstreamTarget.originalDestination(try XCTUnwrap(IPAddress("192.0.2.40")), 80)
        let simple = UpstreamTLS.originate(OriginTLS(mode: .simple, sni: "a.test"))
        let otherSNI = UpstreamTLS.originate(OriginTLS(mode: .simple, sni: "b.test"))
        let mesh = UpstreamTLS.istioMutual(GatewayClientTLS(sni: "a.test"))
        let plain = try idleUpstream(tls: nil)
        let originated = try idleUpstream(tls: simple)
        pool.put(plain)
        pool.put(originated)
        XCTAssertEqual(pool.idleCount, 2)
        XCTAssertNil(pool.take(target, tls: otherSNI), "another SNI is another setting")
        XCTAssertNil(pool.take(target, tls: mesh))
        XCTAssertTrue(pool.take(target, tls: simple) === originated)
        XCTAssertNil(pool.take(target, tls: simple), "taken once")
        XCTAssertTrue(pool.take(target, tls: nil) === plain)
        XCTAssertEqual(pool.idleCount, 0)
    }
}

final class HTTPProxyHandlerAloneTests: XCTestCase {
    /// An upstream connection as the downstream handler drives it: records the request bytes
    /// and the calls; the test plays the origin by calling the handler's sink methods.
    private final class FakeUpstream: HTTPUpstream {
        let target: UpstreamTarget
        let tls: UpstreamTLS?
        let remoteText = "192.0.2.40:80"
        let localText: String? = "192.0.2.1:50000"
        var isWritable = true
        var busy = false
        var isReusable = true
        var isCloseDelimited = false
        var isIdleAndReusable: Bool { self.isReusable && !self.busy && !self.closed }
        weak var sink: (any HTTPUpstreamSink)?
        var sent = ""
        var flushed = ""
        var closed = false
        var released = false
        var exchanges = 0

        init(target: UpstreamTarget, tls: UpstreamTLS? = nil) {
            self.target = target
            self.tls = tls
        }

        func beginExchange(for sink: any HTTPUpstreamSink, toHEAD: Bool, stripChunkFraming: Bool) {
            self.sink = sink
            self.busy = true
            self.exchanges += 1
        }
        func responseEnded() { self.busy = false }
        func notReusable() { self.isReusable = false }
        func send(_ bytes: ByteBuffer) { self.sent += String(buffer: bytes) }
        func flush() { self.flushed = self.sent }
        func flushAtEndOfTick() { self.flushed = self.sent }
        func startReading() {}
        func resumeReading() {}
        func detach() { self.sink = nil }
        func release() {
            self.sink = nil
            self.released = true
        }
        func close() {
            self.closed = true
            self.isReusable = false
        }
        func takeTunnel() -> (channel: any Channel, bytes: ByteBuffer?)? { nil }
        func leavePipeline() {}
    }

    /// Hands out fake upstreams; a dial completes when the test says so.
    private final class FakeProvider: HTTPUpstreamProvider {
        var dials: [(UpstreamTarget, (Result<any HTTPUpstream, any Error>) -> Void)] = []
        var idleAsked = 0
        /// The TLS settings idle connections were asked for, in order.
        var idleTLS: [UpstreamTLS?] = []

        func idle(for target: UpstreamTarget, tls: UpstreamTLS?) -> (any HTTPUpstream)? {
            self.idleAsked += 1
            self.idleTLS.append(tls)
            return nil
        }

        func connect(
            target: UpstreamTarget,
            tls: UpstreamTLS?,
            config: ActiveConfig,
            eventLoop: any EventLoop,
            limits: HTTP1Limits,
            cluster: ClusterState?,
            completion: @escaping (Result<any HTTPUpstream, any Error>) -> Void
        ) {
            self.dials.append((target, completion))
        }
    }

    /// The handler alone on an EmbeddedChannel (ALLOW_ANY: every request is forwarded to its
    /// original destination), its upstreams from `provider`; torn down when the test ends.
    private func proxy(_ provider: FakeProvider) throws -> (HTTPProxyHandler, EmbeddedChannel) {
        let runtime = try Loopback.runtime(config: TestConfig.allowAny, registry: "")
        let connection = DownstreamConnection(
            originalDestination: try SocketAddress(ipAddress: "192.0.2.40", port: 80),
            remote: try SocketAddress(ipAddress: "192.0.2.10", port: 40000))
        let handler = HTTPProxyHandler(runtime: runtime, connection: connection, upstreams: provider)
        let channel = EmbeddedChannel(handler: handler)
        addTeardownBlock {
            _ = try? channel.finish()
            runtime.shutdown()
        }
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.40", port: 80)).wait()
        return (handler, channel)
    }

    /// A GET sent and its dial answered with a fresh fake upstream.
    private func dialled(_ provider: FakeProvider, _ channel: EmbeddedChannel) throws -> FakeUpstream {
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
        let upstream = FakeUpstream(target: provider.dials[0].0)
        provider.dials[0].1(.success(upstream))
        return upstream
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    private func respond(_ handler: HTTPProxyHandler, from upstream: FakeUpstream, _ head: String, body: String) throws {
        handler.upstreamResponse(.head(try HTTP1Head(parsing: ByteBuffer(string: head), kind: .response)), from: upstream)
        if !body.isEmpty { handler.upstreamResponse(.body(ByteBuffer(string: body)), from: upstream) }
        handler.upstreamResponse(.end, from: upstream)
    }

    func testARequestIsDialledSentRelayedAndTheUpstreamKeptForTheNext() throws {
        let provider = FakeProvider()
        let (handler, channel) = try proxy(provider)
        try channel.writeInbound(ByteBuffer(string: "GET /one HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: r1\r\n\r\n"))
        XCTAssertEqual(provider.dials.count, 1)
        XCTAssertEqual(provider.dials.first?.0, .originalDestination(try XCTUnwrap(IPAddress("192.0.2.40")), 80))
        let upstream = FakeUpstream(target: provider.dials[0].0)
        provider.dials[0].1(.success(upstream))
        XCTAssertEqual(upstream.exchanges, 1)
        XCTAssertTrue(upstream.sink === handler)
        XCTAssertTrue(upstream.flushed.hasPrefix("GET /one HTTP/1.1\r\n"), upstream.flushed)
        XCTAssertTrue(upstream.flushed.lowercased().contains("x-request-id: r1\r\n"), upstream.flushed)

        try self.respond(handler, from: upstream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", body: "ok")
        channel.embeddedEventLoop.run()  // the end-of-tick flush
        let reply = try outbound(channel)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200 OK\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix("\r\n\r\nok"), reply)
        XCTAssertFalse(upstream.busy, "the response ended")

        // The next request to the same target reuses the connection: no dial, no pool.
        try channel.writeInbound(ByteBuffer(string: "GET /two HTTP/1.1\r\nHost: a.test\r\n\r\n"))
        XCTAssertEqual(provider.dials.count, 1)
        XCTAssertEqual(provider.idleAsked, 1, "asked once, for the first request")
        XCTAssertEqual(upstream.exchanges, 2)
        XCTAssertTrue(upstream.sent.contains("GET /two HTTP/1.1\r\n"))
        XCTAssertTrue(channel.isActive)
    }

    func testAFailedDialIsEnvoys503AndTheConnectionStaysOpen() throws {
        let provider = FakeProvider()
        let (_, channel) = try proxy(provider)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
        provider.dials[0].1(.failure(UpstreamError.connectFailed("refused")))
        let reply = try outbound(channel)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix(HTTP1LocalReply.resetBody(reason: "connection failure")), reply)
        XCTAssertTrue(channel.isActive, "the request had ended: kept alive")
    }

    func testAnUpstreamThatClosesBeforeTheHeadIs503ConnectionTermination() throws {
        let provider = FakeProvider()
        let (handler, channel) = try proxy(provider)
        let upstream = try dialled(provider, channel)
        handler.upstreamClosed(upstream)
        XCTAssertNil(upstream.sink, "let go of")
        let reply = try outbound(channel)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), reply)
        XCTAssertTrue(reply.hasSuffix(HTTP1LocalReply.resetBody(reason: "connection termination")), reply)
    }

    /// After a reload that gives the destination a DestinationRule `tls`, the connection's own
    /// idle upstream (plaintext) is not reused for the next request, and the pool is asked for
    /// one opened with the new setting.
    /// A handler whose first exchange has ended, its plaintext upstream idle and kept.
    private func idleAfterOneExchange() throws -> (HTTPProxyHandler, FakeProvider, FakeUpstream) {
        let provider = FakeProvider()
        let (handler, channel) = try proxy(provider)
        let upstream = try dialled(provider, channel)
        try self.respond(handler, from: upstream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", body: "")
        channel.embeddedEventLoop.run()
        XCTAssertTrue(upstream.isIdleAndReusable)
        return (handler, provider, upstream)
    }

    func testAnIdleUpstreamOpenedWithAnotherTLSSettingIsNotReused() throws {
        let (handler, provider, upstream) = try idleAfterOneExchange()
        let simple = UpstreamTLS.originate(OriginTLS(mode: .simple, sni: "a.test"))
        XCTAssertNil(handler.reusableUpstream(for: upstream.target, tls: simple))
        XCTAssertTrue(upstream.released, "the plaintext connection went back to the pool, not on the wire")
        XCTAssertEqual(provider.idleTLS.last, .some(simple))
        XCTAssertEqual(upstream.exchanges, 1)
    }

    /// The same setting still reuses it (the check does not cost keep-alive its connection).
    func testAnIdleUpstreamWithTheSameTLSSettingIsReused() throws {
        let (handler, _, upstream) = try idleAfterOneExchange()
        XCTAssertTrue(handler.reusableUpstream(for: upstream.target, tls: nil) === upstream)
        XCTAssertFalse(upstream.released)
    }

    func testAResponseFromAConnectionLetGoOfIsIgnored() throws {
        let provider = FakeProvider()
        let (handler, channel) = try proxy(provider)
        let upstream = try dialled(provider, channel)
        let stranger = FakeUpstream(target: upstream.target)
        try self.respond(handler, from: stranger, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", body: "")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try outbound(channel), "")
    }
}
