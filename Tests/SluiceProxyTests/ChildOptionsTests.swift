import NIOCore
import NIOPosix
import XCTest

@testable import SluiceProxy

/// `OutboundListener` sets the accepted connection's option (half-close kept) synchronously;
/// a channel without `syncOptions` gets it through `Channel.setOption`, never skipped. (Nagle
/// is off through the listening socket: `PerLoopListenerTests`.)
final class ChildOptionsTests: XCTestCase {
    func testAChannelWithoutSyncOptionsGetsTheOptionsAsynchronously() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let address = try XCTUnwrap(server.localAddress)
        // Half-close off to begin with, so the test sees it change.
        let client = try ClientBootstrap(group: group)
            .connect(to: address).wait()
        defer { try? client.close().wait() }
        XCTAssertFalse(try client.getOption(.allowRemoteHalfClosure).wait())

        let plain = WithoutSyncOptions(client)
        XCTAssertNil(plain.syncOptions)
        try OutboundListener.setChildOptions(plain).wait()

        XCTAssertTrue(try client.getOption(.allowRemoteHalfClosure).wait())
    }
}

/// A real socket channel seen through `Channel`'s requirements only: `syncOptions` is the
/// protocol's default, nil (as for a channel type that does not offer them).
private final class WithoutSyncOptions: Channel, @unchecked Sendable {  // forwards to a thread-safe channel
    let base: any Channel
    init(_ base: any Channel) { self.base = base }
    var allocator: ByteBufferAllocator { base.allocator }
    var closeFuture: EventLoopFuture<Void> { base.closeFuture }
    var pipeline: ChannelPipeline { base.pipeline }
    var localAddress: SocketAddress? { base.localAddress }
    var remoteAddress: SocketAddress? { base.remoteAddress }
    var parent: (any Channel)? { base.parent }
    var isWritable: Bool { base.isWritable }
    var isActive: Bool { base.isActive }
    var _channelCore: any ChannelCore { base._channelCore }
    var eventLoop: any EventLoop { base.eventLoop }
    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        base.setOption(option, value: value)
    }
    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        base.getOption(option)
    }
}
