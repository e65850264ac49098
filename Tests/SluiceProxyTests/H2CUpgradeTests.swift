import NIOCore
import NIOPosix
import SluiceTestSupport
import XCTest

@testable import SluiceProxy

/// `Upgrade: h2c` on HTTP/1.1 (what `curl --http2` sends on http://): Envoy does not upgrade
/// by default; it drops `Upgrade` and `HTTP2-Settings` and the exchange stays HTTP/1.1.
final class H2CUpgradeTests: XCTestCase {
    func testH2CUpgradeIsStrippedAndAnsweredAsHTTP11() throws {
        let net = Loopback()
        let origin = try ServerBootstrap(group: net.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HeadEchoOrigin()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        net.adopt(origin)
        let proxy = try net.startSidecar(config: "outboundTrafficPolicy: {mode: ALLOW_ANY}\n", registry: "", originalDestination: origin.localAddress!)
        let request = "GET / HTTP/1.1\r\nHost: h2c.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            + "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
        let reply = try net.exchange(Array(request.utf8), with: proxy, halfClose: true).text
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), reply)
        let seen = reply.lowercased()
        XCTAssertTrue(seen.contains("host: h2c.test"), reply)
        XCTAssertFalse(seen.contains("upgrade"), "the origin saw no upgrade request: \(reply)")
        XCTAssertFalse(seen.contains("http2-settings"), reply)
    }
}

/// Answers one HTTP/1.1 request with its own head as the body, then closes.
private final class HeadEchoOrigin: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var head: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        head += Array(Self.unwrapInboundIn(data).readableBytesView)
        guard let end = head.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
        let body = head[..<end.upperBound]
        var out = context.channel.allocator.buffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        out.writeBytes(body)
        context.writeAndFlush(Self.wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
