import NIOCore
import SluiceCore
import XCTest

/// The connection deadline's state machine, driven with plain instants: which timer is armed
/// when, and what expires.
final class ConnectionDeadlineStateMachineTests: XCTestCase {
    private let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testTheFirstDeadlineArmsTheTimerAndTheHeadClearsIt() {
        var machine = ConnectionDeadlineStateMachine()
        XCTAssertEqual(machine.set(.firstHead(t0 + .seconds(10))), .arm(t0 + .seconds(10)))
        machine.clear()
        XCTAssertEqual(machine.deadline, .none)
        // The timer still fires and finds nothing to do.
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(10)), .none)
    }

    func testALaterDeadlineReusesTheTimerWhichReArmsWhenItFiresEarly() {
        var machine = ConnectionDeadlineStateMachine()
        XCTAssertEqual(machine.set(.idle(t0 + .seconds(30))), .arm(t0 + .seconds(30)))
        // The next request ends later: no new timer.
        XCTAssertEqual(machine.set(.idle(t0 + .seconds(45))), .none)
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(30)), .arm(t0 + .seconds(45)))
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(45)), .expired(.idle(t0 + .seconds(45))))
        XCTAssertEqual(machine.deadline, .none, "an expired deadline is cleared")
    }

    func testAnEarlierDeadlineArmsANewTimer() {
        var machine = ConnectionDeadlineStateMachine()
        XCTAssertEqual(machine.set(.idle(t0 + .seconds(60))), .arm(t0 + .seconds(60)))
        XCTAssertEqual(machine.set(.response(t0 + .seconds(15), .seconds(15))), .arm(t0 + .seconds(15)))
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(15)), .expired(.response(t0 + .seconds(15), .seconds(15))))
    }

    func testADeadlineExpiresExactlyAtItsInstantNotBefore() {
        var machine = ConnectionDeadlineStateMachine()
        _ = machine.set(.firstHead(t0 + .seconds(10)))
        // A timer that fires a nanosecond early (a coarse clock) re-arms for the same instant.
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(10) - .nanoseconds(1)), .arm(t0 + .seconds(10)))
        XCTAssertEqual(machine.timerFired(now: t0 + .seconds(10)), .expired(.firstHead(t0 + .seconds(10))))
    }

    func testACancelledTimerIsArmedAgainForTheNextDeadline() {
        var machine = ConnectionDeadlineStateMachine()
        _ = machine.set(.idle(t0 + .seconds(5)))
        machine.timerCancelled()
        XCTAssertEqual(machine.set(.idle(t0 + .seconds(9))), .arm(t0 + .seconds(9)))
        XCTAssertEqual(machine.set(.none), .none)
    }
}
