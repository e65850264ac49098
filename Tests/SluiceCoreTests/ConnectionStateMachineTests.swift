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

    // MARK: HTTPExchangeStateMachine

    func testAForwardedExchangeQueuesWhileConnectingThenStreams() {
        var exchange = HTTPExchangeStateMachine(phase: .forwarding, keepAlive: true)
        exchange.startConnecting(with: ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        XCTAssertEqual(exchange.requestBody(ByteBuffer(string: "body")), .queued)
        exchange.requestEnd()
        let queued = exchange.connected()
        XCTAssertEqual(queued?.map { String(buffer: $0) }, ["GET / HTTP/1.1\r\n\r\n", "body"])
        XCTAssertEqual(exchange.phase, .forwarding)
        XCTAssertNil(exchange.connected(), "connected once")
        XCTAssertEqual(exchange.requestBody(ByteBuffer(string: "more")), .send)
        XCTAssertFalse(exchange.isDone)
        XCTAssertEqual(exchange.responseHead(status: 200), .relay)
        XCTAssertTrue(exchange.responseEndFramed())
        XCTAssertTrue(exchange.isDone)
        XCTAssertFalse(exchange.closesConnection)
    }

    func testAnInterimResponsesEndIsNotTheResponses() {
        var exchange = HTTPExchangeStateMachine(phase: .forwarding, keepAlive: true)
        XCTAssertEqual(exchange.responseHead(status: 100), .interim)
        XCTAssertFalse(exchange.responseStarted)
        XCTAssertFalse(exchange.responseEndFramed(), "the 100's end")
        XCTAssertEqual(exchange.responseHead(status: 103), .interim)
        XCTAssertFalse(exchange.responseEndFramed())
        XCTAssertEqual(exchange.responseHead(status: 101), .relay, "101 is a final answer here: the switch")
        exchange.switchingProtocols()
        XCTAssertTrue(exchange.switching)
    }

    func testAFailedDialDropsTheQueueAndALocalAnswerThatClosesEndsTheRequest() {
        var exchange = HTTPExchangeStateMachine(phase: .forwarding, keepAlive: true)
        exchange.startConnecting(with: ByteBuffer(string: "head"))
        exchange.failed()
        XCTAssertNil(exchange.connected(), "a late connection finds nothing to send")
        XCTAssertEqual(exchange.requestBody(ByteBuffer(string: "x")), .discard)
        exchange.answeredLocally(close: true)
        XCTAssertTrue(exchange.isDone, "the rest of the request is not read")
    }

    func testADeniedKeptAliveAnswerWaitsForTheRequestsEnd() {
        var exchange = HTTPExchangeStateMachine(phase: .denied, keepAlive: true)
        XCTAssertEqual(exchange.requestBody(ByteBuffer(string: "x")), .discard)
        exchange.answeredLocally(close: false)
        XCTAssertFalse(exchange.isDone)
        exchange.requestEnd()
        XCTAssertTrue(exchange.isDone)
    }

    func testAnHTTP10OrCloseDelimitedResponseClosesTheConnection() {
        XCTAssertTrue(HTTPExchangeStateMachine(phase: .forwarding, keepAlive: false).closesConnection)
        var exchange = HTTPExchangeStateMachine(phase: .forwarding, keepAlive: true)
        exchange.responseDelimitedByClose()
        XCTAssertTrue(exchange.closesConnection)
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
