import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import SluiceProxy

/// Deferred flushes run once the loop has handled the tick's events — not before, once each,
/// and a flush deferred while they run gets its own turn.
final class TickFlushesTests: XCTestCase {
    private final class Probe: EndOfTickFlushing {
        var runs = 0
        var onRun: (() -> Void)?
        func runDeferredFlush() {
            self.runs += 1
            self.onRun?()
        }
    }

    func testDeferredFlushesRunWhenTheLoopRunsItsTasksOnceEach() {
        let loop = EmbeddedEventLoop()
        let batch = TickFlushes.current
        let first = Probe()
        let second = Probe()
        batch.flushAtEndOfTick(first, on: loop)
        batch.flushAtEndOfTick(second, on: loop)
        XCTAssertEqual(batch.count, 2)
        XCTAssertEqual(first.runs + second.runs, 0, "nothing flushes inside the tick")

        loop.run()
        XCTAssertEqual(first.runs, 1)
        XCTAssertEqual(second.runs, 1)
        XCTAssertEqual(batch.count, 0)

        loop.run()
        XCTAssertEqual(first.runs + second.runs, 2, "a run empties the batch")
    }

    func testAFlushDeferredWhileTheBatchRunsGetsTheNextTurn() {
        let loop = EmbeddedEventLoop()
        let batch = TickFlushes.current
        let later = Probe()
        let first = Probe()
        first.onRun = { batch.flushAtEndOfTick(later, on: loop) }
        batch.flushAtEndOfTick(first, on: loop)

        loop.run()  // EmbeddedEventLoop.run also runs tasks those tasks queue
        XCTAssertEqual(first.runs, 1)
        XCTAssertEqual(later.runs, 1)
        XCTAssertEqual(batch.count, 0)
    }

    func testEachEventLoopThreadHasItsOwnBatch() throws {
        let here = ObjectIdentifier(TickFlushes.current)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let there = try group.next().submit { ObjectIdentifier(TickFlushes.current) }.wait()
        XCTAssertNotEqual(here, there)
        XCTAssertEqual(here, ObjectIdentifier(TickFlushes.current))
    }

    /// A handler that only lends its context to a CoalescingWriter.
    private final class Holder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        let deferred = CoalescingWriter()
        func handlerAdded(context: ChannelHandlerContext) { self.deferred.attach(context) }
        func handlerRemoved(context: ChannelHandlerContext) { self.deferred.attach(nil) }
    }

    func testTheEndOfTickFlushWritesAtOnceAndFlushesAtTheEndOfTheTick() throws {
        let holder = Holder()
        let channel = EmbeddedChannel(handler: holder)
        defer { _ = try? channel.finish() }
        holder.deferred.hold(ByteBuffer(string: "one"))
        holder.deferred.hold(ByteBuffer(string: "two"))
        holder.deferred.flushAtEndOfTick()
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "written, not flushed yet")
        XCTAssertTrue(holder.deferred.isPending)

        channel.embeddedEventLoop.run()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "one"))
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "two"))
        XCTAssertFalse(holder.deferred.isPending)
    }

    func testFlushNowSendsWhatWaitsBeforeAClose() throws {
        let holder = Holder()
        let channel = EmbeddedChannel(handler: holder)
        holder.deferred.hold(ByteBuffer(string: "last bytes"))
        holder.deferred.flushAtEndOfTick()
        holder.deferred.flushNow()
        XCTAssertFalse(holder.deferred.isPending)
        try channel.close().wait()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self), ByteBuffer(string: "last bytes"))
        channel.embeddedEventLoop.run()  // the queued end-of-tick call finds nothing to do
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }
}

/// The coalescing writer's passes: the last buffer rides with the flush, a small body joins a
/// head sized for it, a large one is written as read.
final class CoalescingWriterTests: XCTestCase {
    private final class Holder: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        let writer = CoalescingWriter()
        func handlerAdded(context: ChannelHandlerContext) { self.writer.attach(context) }
        func handlerRemoved(context: ChannelHandlerContext) { self.writer.attach(nil) }
    }

    private func drain(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { parts.append(String(buffer: buffer)) }
        return parts
    }

    func testASmallBodyRidesInTheHeadsBufferAndALargeOneIsWrittenAsRead() throws {
        let holder = Holder()
        let channel = EmbeddedChannel(handler: holder)
        defer { _ = try? channel.finish() }
        var head = channel.allocator.buffer(capacity: 32)
        head.writeString("HEAD\r\n")
        holder.writer.hold(head)
        var small = ByteBuffer(string: "tiny")
        XCTAssertTrue(holder.writer.appendToHeld(&small))
        var large = ByteBuffer(string: String(repeating: "x", count: 64))
        XCTAssertFalse(holder.writer.appendToHeld(&large), "no room: left to the caller")
        holder.writer.writeThrough(large)
        XCTAssertEqual(try self.drain(channel), [], "nothing flushed yet")
        holder.writer.flush()
        XCTAssertEqual(try self.drain(channel), ["HEAD\r\ntiny", String(repeating: "x", count: 64)])
        holder.writer.flush()
        XCTAssertEqual(try self.drain(channel), [], "a second flush has nothing to send")
    }

    func testAFlushCoversADeferredOne() throws {
        let holder = Holder()
        let channel = EmbeddedChannel(handler: holder)
        defer { _ = try? channel.finish() }
        holder.writer.hold(ByteBuffer(string: "a"))
        holder.writer.flushAtEndOfTick()
        XCTAssertTrue(holder.writer.isPending)
        holder.writer.hold(ByteBuffer(string: "b"))
        holder.writer.flush()
        XCTAssertFalse(holder.writer.isPending)
        XCTAssertEqual(try self.drain(channel), ["a", "b"])
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try self.drain(channel), [])
    }
}
