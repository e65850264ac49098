import NIOCore
import NIOEmbedded
import XCTest

@testable import SluiceProxy

/// The per-loop deadlines behind one NIO timer, on an `EmbeddedEventLoop` whose clock
/// `advanceTime` moves: no sleeping, no timing.
final class LoopTimersTests: XCTestCase {
    private final class Recorder: LoopTimerHandler {
        let name: String
        let log: Log
        var onFire: (() -> Void)?
        init(_ name: String, _ log: Log) {
            self.name = name
            self.log = log
        }
        func loopTimerFired() {
            self.log.fired.append(self.name)
            self.onFire?()
        }
    }

    private final class Log {
        var fired: [String] = []
    }

    func testDeadlinesFireInOrderAtTheirInstantAndCancelledOnesNever() {
        let loop = EmbeddedEventLoop()
        let log = Log()
        let timers = LoopTimers.on(loop)
        XCTAssertTrue(LoopTimers.on(loop) === timers, "one instance per loop")
        let start = loop.now
        _ = timers.schedule(at: start + .seconds(10), Recorder("b", log))
        _ = timers.schedule(at: start + .seconds(5), Recorder("a", log))
        let cancelled = timers.schedule(at: start + .seconds(7), Recorder("x", log))
        _ = timers.schedule(at: start + .seconds(15), Recorder("c", log))
        cancelled.cancel()
        loop.advanceTime(by: .seconds(5) - .nanoseconds(1))
        XCTAssertEqual(log.fired, [], "nothing before the earliest deadline")
        loop.advanceTime(by: .nanoseconds(1))
        XCTAssertEqual(log.fired, ["a"])
        loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(log.fired, ["a", "b"], "the cancelled deadline at 7 s never fires")
        loop.advanceTime(by: .seconds(10))
        XCTAssertEqual(log.fired, ["a", "b", "c"])
        cancelled.cancel()  // after the fact: a no-op
    }

    func testAnEarlierDeadlineRearmsAndACancelledEarliestLeavesTheRestOnTime() {
        let loop = EmbeddedEventLoop()
        let log = Log()
        let timers = LoopTimers.on(loop)
        let start = loop.now
        let first = timers.schedule(at: start + .seconds(20), Recorder("late", log))
        _ = timers.schedule(at: start + .seconds(3), Recorder("early", log))
        loop.advanceTime(by: .seconds(3))
        XCTAssertEqual(log.fired, ["early"], "a deadline earlier than the armed timer is kept")
        first.cancel()
        _ = timers.schedule(at: loop.now + .seconds(30), Recorder("next", log))
        loop.advanceTime(by: .seconds(29))
        XCTAssertEqual(log.fired, ["early"])
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(log.fired, ["early", "next"])
    }

    func testAHandlerMayScheduleAndCancelWhileFiring() {
        let loop = EmbeddedEventLoop()
        let log = Log()
        let timers = LoopTimers.on(loop)
        let start = loop.now
        let victim = timers.schedule(at: start + .seconds(2), Recorder("victim", log))
        let first = Recorder("first", log)
        first.onFire = {
            victim.cancel()
            _ = timers.schedule(at: loop.now + .seconds(4), Recorder("again", log))
        }
        _ = timers.schedule(at: start + .seconds(2), first)
        loop.advanceTime(by: .seconds(2))
        // Same deadline: whichever fires first; the victim is cancelled only if it had not fired.
        XCTAssertTrue(log.fired == ["first"] || log.fired == ["victim", "first"], "\(log.fired)")
        loop.advanceTime(by: .seconds(4))
        XCTAssertEqual(log.fired.last, "again", "scheduled from a firing handler, armed after it")
    }
}
