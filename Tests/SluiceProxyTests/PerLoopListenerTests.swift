import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import SluiceProxy

/// `PerLoopListener`: one listening socket per event loop on one port, each connection set up
/// synchronously on the loop that accepted it (`DirectAcceptHandler`), Nagle off through the
/// listening socket, and the connection registered and served after; a refused connection
/// costs the listener nothing; what `setUp` declines goes through the bootstrap's initializer.
final class PerLoopListenerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() {
        try? self.group.syncShutdownGracefully()
    }

    func testEachLoopAcceptsOntoItselfWithNagleOffAndServes() async throws {
        let seen = NIOLockedValueBox<[(onAcceptingLoop: Bool, noDelay: Int)]>([])
        let listeners = try await self.bind(
            setUp: { channel in
                let onAcceptingLoop = channel.eventLoop.inEventLoop && channel.parent?.eventLoop === channel.eventLoop
                let noDelay = try XCTUnwrap(channel.syncOptions).getOption(.tcpOption(.tcp_nodelay))
                seen.withLockedValue { $0.append((onAcceptingLoop, noDelay)) }
                try channel.pipeline.syncOperations.addHandler(Greeter())
                return true
            },
            initialize: { channel in channel.eventLoop.makeFailedFuture(NotThisPath()) }
        )
        defer { for listener in listeners { listener.close(promise: nil) } }
        XCTAssertEqual(listeners.count, 2, "a socket per loop")
        let ports = Set(listeners.compactMap { $0.localAddress?.port })
        XCTAssertEqual(ports.count, 1, "all on one port")
        XCTAssertNotEqual(ports.first, 0)
        XCTAssertFalse(listeners[0].eventLoop === listeners[1].eventLoop, "one per loop")
        let address = try XCTUnwrap(listeners[0].localAddress)
        for _ in 0..<8 {
            let reply = try await self.fetch(address)
            XCTAssertEqual(reply, "hi")
        }
        let records = seen.withLockedValue { $0 }
        XCTAssertEqual(records.count, 8)
        for record in records {
            XCTAssertTrue(record.onAcceptingLoop, "set up synchronously on the loop that accepted it")
            XCTAssertNotEqual(record.noDelay, 0, "TCP_NODELAY copied from the listening socket")
        }
    }

    func testARefusedConnectionIsClosedAndTheNextOneServed() async throws {
        let refuseNext = NIOLockedValueBox(true)
        let listeners = try await self.bind(
            setUp: { channel in
                if refuseNext.withLockedValue({ refuse in defer { refuse = false }; return refuse }) {
                    throw NotThisPath()
                }
                try channel.pipeline.syncOperations.addHandler(Greeter())
                return true
            },
            initialize: { channel in channel.eventLoop.makeFailedFuture(NotThisPath()) }
        )
        defer { for listener in listeners { listener.close(promise: nil) } }
        let address = try XCTUnwrap(listeners[0].localAddress)
        let refused = try await self.fetch(address)
        XCTAssertEqual(refused, "", "closed without a byte")
        let served = try await self.fetch(address)
        XCTAssertEqual(served, "hi")
    }

    func testAConnectionSetUpDeclinesGoesThroughTheInitializer() async throws {
        let initialized = NIOLockedValueBox(0)
        let listeners = try await self.bind(
            setUp: { _ in false },
            initialize: { channel in
                initialized.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Greeter())
                }
            }
        )
        defer { for listener in listeners { listener.close(promise: nil) } }
        let reply = try await self.fetch(try XCTUnwrap(listeners[0].localAddress))
        XCTAssertEqual(reply, "hi")
        XCTAssertEqual(initialized.withLockedValue { $0 }, 1)
    }

    func testAPortHeldWithoutReusePortIsABindErrorNamingTheListener() async throws {
        let holder = try await ServerBootstrap(group: self.group).bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let port = try XCTUnwrap(holder.localAddress?.port)
        do {
            _ = try await PerLoopListener.bind(
                "test", host: "127.0.0.1", port: port, group: self.group, logger: Logger(label: "test"),
                setUp: { _ in true }, initialize: { $0.eventLoop.makeSucceededVoidFuture() })
            XCTFail("bound a port another socket holds")
        } catch let error as ListenerBindError {
            XCTAssertEqual(error.description, "cannot listen on 127.0.0.1:\(port) (test): Address already in use")
        }
    }

    func testResourceErrorsPauseAcceptingOthersDoNot() {
        XCTAssertEqual(PerLoopListener.backoff(IOError(errnoCode: EMFILE, reason: "accept")), .seconds(1))
        XCTAssertEqual(PerLoopListener.backoff(IOError(errnoCode: ENFILE, reason: "accept")), .seconds(1))
        XCTAssertNil(PerLoopListener.backoff(IOError(errnoCode: ECONNABORTED, reason: "accept")))
    }

    // MARK: helpers

    private func bind(
        setUp: @escaping @Sendable (any Channel) throws -> Bool,
        initialize: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) async throws -> [any Channel] {
        try await PerLoopListener.bind(
            "test", host: "127.0.0.1", port: 0, group: self.group, logger: Logger(label: "test"),
            setUp: setUp, initialize: initialize)
    }

    /// Connects, reads until the server closes, returns what came.
    private func fetch(_ address: SocketAddress) async throws -> String {
        let done = self.group.next().makePromise(of: String.self)
        _ = try await ClientBootstrap(group: self.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: done))
                }
            }
            .connect(to: address).get()
        return try await done.futureResult.get()
    }
}

private struct NotThisPath: Error {}

/// Says "hi" once active, then closes: the connection was registered and made active.
private final class Greeter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(string: "hi")
        context.writeAndFlush(Self.wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }
}

/// Collects what the server sends until it closes.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var received = ""
    private let done: EventLoopPromise<String>

    init(done: EventLoopPromise<String>) {
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.received += String(buffer: Self.unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.done.succeed(self.received)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
