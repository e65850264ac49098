import NIOCore
import SluiceCore
import XCTest

/// The value-type state of the HTTP data path's connections, driven by events directly.
final class ConnectionStateMachineTests: XCTestCase {
    // MARK: HTTPConnectionStateMachine (the downstream connection)

    func testAKeptAliveConnectionWaitsForTheNextRequestAndCloseAfterCloses() {
        var machine = HTTPConnectionStateMachine()
        machine.requestHeadFramed()
        XCTAssertTrue(machine.mayFrame(exchangeInFlight: true), "the request's body and end are framed")
        machine.requestEndFramed()
        XCTAssertFalse(machine.mayFrame(exchangeInFlight: true), "a pipelined request waits for the response")
        XCTAssertEqual(machine.exchangeFinished(closeAfter: false), .awaitNextRequest)
        XCTAssertTrue(machine.mayFrame(exchangeInFlight: false))
        XCTAssertEqual(machine.exchangeFinished(closeAfter: true), .close)
        XCTAssertTrue(machine.isClosed)
        XCTAssertFalse(machine.mayFrame(exchangeInFlight: false), "nothing is framed once closed")
        XCTAssertEqual(machine.exchangeFinished(closeAfter: false), .none, "closed once")
    }

    func testAFINWithNothingInFlightClosesNowAndMidExchangeAfterIt() {
        var idle = HTTPConnectionStateMachine()
        XCTAssertEqual(idle.drain(exchangeInFlight: false), .closeNow)

        var busy = HTTPConnectionStateMachine()
        XCTAssertEqual(busy.drain(exchangeInFlight: true), .afterExchange)
        XCTAssertTrue(busy.isDraining)
        XCTAssertFalse(busy.isClosed)
        XCTAssertEqual(busy.exchangeFinished(closeAfter: false), .close, "a draining connection closes after its exchange")
    }

    func testADrainAfterCloseStaysClosed() {
        var machine = HTTPConnectionStateMachine()
        machine.closed()
        _ = machine.drain(exchangeInFlight: true)
        XCTAssertEqual(machine.life, .closed)
    }

    func testReadsWaitForABufferedPipelinedRequestOrABusyUpstream() {
        var machine = HTTPConnectionStateMachine()
        XCTAssertFalse(machine.isReadHeld(exchangeInFlight: false, bufferedBytes: 100, upstreamHolds: true), "nothing in flight")
        XCTAssertTrue(machine.isReadHeld(exchangeInFlight: true, bufferedBytes: 0, upstreamHolds: true))
        XCTAssertTrue(machine.isReadHeld(exchangeInFlight: true, bufferedBytes: 5, upstreamHolds: false), "a pipelined request")
        machine.requestHeadFramed()
        XCTAssertFalse(machine.isReadHeld(exchangeInFlight: true, bufferedBytes: 5, upstreamHolds: false), "the open request's body")
    }

    func testFramingIsNotReentered() {
        var machine = HTTPConnectionStateMachine()
        XCTAssertTrue(machine.startFraming())
        XCTAssertFalse(machine.startFraming())
        machine.stopFraming()
        XCTAssertTrue(machine.startFraming())
    }

    func testWritability() {
        var machine = HTTPConnectionStateMachine()
        XCTAssertFalse(machine.writabilityChanged(false))
        XCTAssertFalse(machine.channelWritable)
        XCTAssertTrue(machine.writabilityChanged(true))
    }

    // MARK: UpstreamConnectionStateMachine

    func testAnUpstreamIsReusableBetweenExchangesUntilItCannotBe() {
        var machine = UpstreamConnectionStateMachine()
        XCTAssertTrue(machine.isIdleAndReusable)
        machine.exchangeStarted()
        XCTAssertFalse(machine.isIdleAndReusable, "busy")
        machine.responseEnded()
        XCTAssertTrue(machine.isIdleAndReusable)
        machine.notReusable()
        XCTAssertFalse(machine.isIdleAndReusable)
        XCTAssertFalse(machine.isReusable)
    }

    func testUnexpectedBytesEndReuseButAnEmptyReadDoesNot() {
        var machine = UpstreamConnectionStateMachine()
        XCTAssertFalse(machine.unexpectedBytes(0))
        XCTAssertTrue(machine.isReusable)
        XCTAssertTrue(machine.unexpectedBytes(3))
        XCTAssertFalse(machine.isReusable)
    }

    func testAPooledConnectionThatClosesIsForgottenByThePool() {
        var machine = UpstreamConnectionStateMachine()
        machine.pooled()
        XCTAssertTrue(machine.closed(), "the pool must forget it")
        XCTAssertFalse(machine.isPooled)
        XCTAssertFalse(machine.isReusable)
        var taken = UpstreamConnectionStateMachine()
        taken.pooled()
        taken.unpooled()
        XCTAssertFalse(taken.closed(), "not in the pool any more")
    }

    // MARK: ReadHoldStateMachine

    func testAHeldReadIsIssuedOnceWhenTheHoldEnds() {
        var hold = ReadHoldStateMachine()
        XCTAssertEqual(hold.read(held: false), .read)
        XCTAssertFalse(hold.resume(held: false), "no read was kept")
        XCTAssertEqual(hold.read(held: true), .hold)
        XCTAssertFalse(hold.resume(held: true), "still held")
        XCTAssertTrue(hold.resume(held: false))
        XCTAssertFalse(hold.resume(held: false), "issued once")
    }

    // MARK: HeldInbound

    func testHeldBytesAndAnEndOfInputReplayInOrder() {
        var held = HeldInbound()
        XCTAssertNil(held.takeForReplay().bytes)
        var first = ByteBuffer(string: "GET / HT")
        var second = ByteBuffer(string: "TP/1.1\r\n")
        held.append(&first)
        held.append(&second)
        held.holdInputClosed()
        XCTAssertEqual(held.readableBytes, 16)
        let replay = held.takeForReplay()
        XCTAssertEqual(replay.bytes.map { String(buffer: $0) }, "GET / HTTP/1.1\r\n")
        XCTAssertTrue(replay.inputClosed)
        let again = held.takeForReplay()
        XCTAssertNil(again.bytes)
        XCTAssertFalse(again.inputClosed, "replayed once")
    }

    func testAnEmptyBufferIsNotReplayed() {
        var held = HeldInbound()
        var empty = ByteBuffer()
        held.append(&empty)
        XCTAssertNil(held.takeForReplay().bytes)
    }
}
