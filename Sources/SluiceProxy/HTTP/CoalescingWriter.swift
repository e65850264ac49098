import NIOCore

/// The write side of one HTTP handler's channel, for both HTTP handlers (request bytes to
/// the origin, response bytes to the app): as few passes through the pipeline as the bytes
/// allow.
///
/// - The last buffer written is held back, so that it and the flush go through the pipeline
///   as one `writeAndFlush` (a GET's head and its flush make one pass).
/// - A small body appends to a held head sized for it (one write and one iovec, not two).
/// - The flush of an exchange's last bytes on a kept-alive connection may wait for the end of
///   the loop tick (`TickFlushes`); the bytes are written at once.
///
/// The handler attaches its context in `handlerAdded` (and detaches it in `handlerRemoved`)
/// and calls `flushNow()` before it closes the channel, since NIO fails writes still pending
/// at a close. A class, so that a handler calling it holds no access to its own stored
/// properties across the channel calls made here (which can call back into the handler).
final class CoalescingWriter: EndOfTickFlushing {
    private var context: ChannelHandlerContext?
    /// The loop thread's batch, looked up once per connection rather than per request.
    private var batch: TickFlushes?
    /// A flush waits for the end of the tick.
    private(set) var isPending = false
    /// The last buffer written, not passed to the channel yet.
    private var held: ByteBuffer?
    /// Bytes written (or held) and not flushed yet.
    private var unflushed = false

    /// Called from `handlerAdded` (on the channel's event loop) and `handlerRemoved` (nil).
    func attach(_ context: ChannelHandlerContext?) {
        self.context = context
        self.batch = context == nil ? nil : TickFlushes.current
    }

    /// Writes `bytes` behind what was written, holding them back until the next write or flush.
    func hold(_ bytes: ByteBuffer) {
        guard let context = self.context else { return }
        if let earlier = self.held.take() {
            context.write(NIOAny(earlier), promise: nil)
        }
        self.held = bytes
        self.unflushed = true
    }

    /// Appends `body` to the held buffer when its spare room takes it (a head whose buffer was
    /// sized for a small body): false, and nothing done, otherwise.
    func appendToHeld(_ body: inout ByteBuffer) -> Bool {
        // Taken out so that `pending` is the only reference: appended in place.
        guard var pending = self.held.take() else { return false }
        defer { self.held = pending }
        guard body.readableBytes <= pending.writableBytes else { return false }
        pending.writeBuffer(&body)
        self.unflushed = true
        return true
    }

    /// Writes what is held, then `bytes`, now (a body read as it is: nothing held after).
    func writeThrough(_ bytes: ByteBuffer) {
        guard let context = self.context else { return }
        if let earlier = self.held.take() {
            context.write(NIOAny(earlier), promise: nil)
        }
        context.write(NIOAny(bytes), promise: nil)
        self.unflushed = true
    }

    /// Flushes what was written, if anything: the held buffer and the flush in one pass.
    func flush() {
        guard self.unflushed else { return }
        self.unflushed = false
        self.isPending = false  // this flush covers a deferred one
        if let last = self.held.take() {
            self.context?.writeAndFlush(NIOAny(last), promise: nil)
        } else {
            self.context?.flush()
        }
    }

    /// Flushes everything written and completes `promise` once it is all out: the promise
    /// rides on the held buffer's write (writes complete in order), or on an empty write when
    /// nothing is held. For a close that must not cut the response short.
    func flush(completing promise: EventLoopPromise<Void>) {
        guard let context = self.context else {
            promise.succeed(())
            return
        }
        self.unflushed = false
        self.isPending = false
        let last = self.held.take() ?? context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(NIOAny(last), promise: promise)
    }

    /// As `flush`, but only the bytes go now; the flush waits for the end of the loop tick.
    func flushAtEndOfTick() {
        guard self.unflushed else { return }
        self.unflushed = false
        let last = self.held.take()
        guard let context = self.context, let batch = self.batch else { return }
        if !self.isPending {
            self.isPending = true
            batch.flushAtEndOfTick(self, on: context.eventLoop)
        }
        if let last { context.write(NIOAny(last), promise: nil) }
    }

    /// Flushes now what waits for the end of the tick, if anything: before a close.
    func flushNow() {
        guard self.isPending else { return }
        self.isPending = false
        self.context?.flush()
    }

    func runDeferredFlush() {
        self.flushNow()
    }
}
