import NIOCore
import NIOEmbedded
import SluiceCore
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// The HTTP path's deadlines (header read, idle) on an `EmbeddedChannel`: its event loop's
/// clock is moved with `advanceTime`, so these tests neither sleep nor depend on timing.
final class DeadlineTests: XCTestCase {
    private func proxyChannel(_ yaml: String) throws -> (EmbeddedChannel, ProxyRuntime) {
        let runtime = try Loopback.runtime(config: yaml, registry: "")
        let channel = EmbeddedChannel()
        let connection = DownstreamConnection(
            originalDestination: try SocketAddress(ipAddress: "192.0.2.30", port: 80),
            remote: try SocketAddress(ipAddress: "192.0.2.10", port: 40000))
        try HTTPProxyPipeline.install(on: channel, after: nil, runtime: runtime, connection: connection)
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.30", port: 80)).wait()
        return (channel, runtime)
    }

    private func outbound(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func testAnUnfinishedHeadGets408ExactlyWhenTheHeaderReadTimeoutPasses() throws {
        let (channel, runtime) = try proxyChannel("outboundTrafficPolicy: {mode: ALLOW_ANY}\nlimits: {headerReadTimeout: 10s}\n")
        defer { runtime.shutdown() }
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a.test\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        XCTAssertEqual(try outbound(channel), "", "not before the deadline")
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        let reply = try outbound(channel)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), reply)
        XCTAssertFalse(channel.isActive, "closed after the 408")
    }

    func testAKeptAliveConnectionIsClosedExactlyWhenTheIdleTimeoutPasses() throws {
        let (channel, runtime) = try proxyChannel("outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nlimits: {idleTimeout: 30s}\n")
        defer { runtime.shutdown() }
        // A denied request is answered locally (502) and the connection kept alive.
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: unregistered.test\r\n\r\n"))
        let reply = try outbound(channel)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), reply)
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        XCTAssertTrue(channel.isActive, "not before the idle timeout")
        // A second request restarts the idle clock from its own end.
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: unregistered.test\r\n\r\n"))
        XCTAssertTrue(try outbound(channel).hasPrefix("HTTP/1.1 502"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        XCTAssertTrue(channel.isActive, "the second request moved the deadline")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive, "closed when 30 s passed without a request")
    }

    /// The gateway's HTTP listener tells HTTP/2 from HTTP/1 by the first bytes; a client that
    /// stops inside the preface is handed to the HTTP/1 handler (and its own deadlines)
    /// exactly when the detection timeout passes.
    func testTheGatewaysVersionSnifferHandsAStalledClientToHTTP1AtTheDetectionTimeout() throws {
        let runtime = try Loopback.runtime(config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\nlimits: {detectionTimeout: 5s}\n", registry: "")
        defer { runtime.shutdown() }
        let channel = EmbeddedChannel()
        let connection = DownstreamConnection(
            originalDestination: try SocketAddress(ipAddress: "192.0.2.30", port: 80),
            remote: try SocketAddress(ipAddress: "192.0.2.10", port: 40000))
        try channel.pipeline.syncOperations.addHandler(HTTPVersionSniffer(runtime: runtime, connection: connection))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.30", port: 80)).wait()
        try channel.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        XCTAssertNoThrow(try channel.pipeline.syncOperations.handler(type: HTTPVersionSniffer.self), "still reading the preface")
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: HTTPProxyHandler.self))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: HTTPVersionSniffer.self), "left at the timeout")
        XCTAssertNoThrow(try channel.pipeline.syncOperations.handler(type: HTTPProxyHandler.self), "the HTTP/1 handler took over")
        _ = try? channel.finish()
    }
}
