import NIOCore

/// Sets up each accepted connection synchronously, in the listening channel's read, and hands
/// it straight to NIO to register, instead of through `ServerBootstrap`'s accept handler.
///
/// That handler runs every accepted connection through a chain of futures (the child options
/// applied one future each, the initializer's future, a `flatMap`, an isolated `flatMap` and a
/// `whenFailure`): ~13k instructions and a dozen allocations per connection in callgrind
/// (`Benchmarks/scripts/callgrind 10 mtls-newconn`), for work that is synchronous here. This
/// handler sits before it in the listening channel's pipeline: a connection accepted onto this
/// loop is set up by `setUp` at once and then given to the listening channel's core, which is
/// what the end of the pipeline would do with it (queue its registration, then make it active);
/// the bootstrap's handler never sees it.
///
/// A connection for another event loop (a listener whose child group has other loops; the
/// per-loop listeners of `PerLoopListener` never accept one) is passed on to the bootstrap's
/// handler, whose child initializer sets it up on its own loop. So is one `setUp` declines
/// (returns false): the bootstrap's initializer then does the same work asynchronously.
final class DirectAcceptHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel

    /// Sets up an accepted connection on its event loop (options, handlers); false leaves it
    /// to the bootstrap's child initializer; a throw refuses it (it is closed; `setUp` says why).
    typealias SetUp = (any Channel) throws -> Bool

    private let setUp: SetUp

    init(setUp: @escaping SetUp) {
        self.setUp = setUp
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = Self.unwrapInboundIn(data)
        guard child.eventLoop === context.eventLoop else {
            context.fireChannelRead(data)
            return
        }
        let handled: Bool
        do {
            handled = try self.setUp(child)
        } catch {
            // Refused (connection limit, no original destination, a loop): logged by `setUp`;
            // the socket is not registered yet, closing it only releases it.
            child.close(promise: nil)
            return
        }
        guard handled else {
            context.fireChannelRead(data)
            return
        }
        // What the pipeline's tail does with an accepted channel: the listening channel
        // registers it on its loop and makes it active (a task on that loop, as before).
        context.channel._channelCore.channelRead0(data)
    }
}
