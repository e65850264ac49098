import NIOCore
import SluiceCore
import XCTest

/// Retries as Envoy's router makes them under Istio's `retries` (VirtualService reference,
/// HTTPRetry; Envoy's x-envoy-retry-on conditions), with Sluice's rule that only what was
/// never sent, or an idempotent request kept whole, goes out again.
final class RetryStateMachineTests: XCTestCase {
    private let head = ByteBuffer(string: "GET / HTTP/1.1\r\nhost: a.test\r\n\r\n")

    func testAResetGETIsSentAgainWholeUntilTheAttemptsAreUsedUp() {
        var machine = RetryStateMachine(policy: RetryPolicy(attempts: 2, retryOn: ["reset"]), method: "GET", head: head)
        machine.ended()
        XCTAssertEqual(machine.after(.reset), .retry([head]))
        XCTAssertEqual(machine.after(.reset), .retry([head]))
        XCTAssertEqual(machine.attempt, 3)
        XCTAssertEqual(machine.after(.reset), .exhausted, "Envoy's URX")
    }

    func testAPOSTIsRetriedAfterAConnectFailureButNeverOnceBytesWereSent() {
        let post = ByteBuffer(string: "POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\n\r\n")
        var machine = RetryStateMachine(policy: RetryPolicy(attempts: 3, retryOn: ["reset", "connect-failure", "5xx"]), method: "POST", head: post)
        machine.body(ByteBuffer(string: "hi"))
        XCTAssertEqual(machine.after(.connectFailure), .retry([]), "still queued for the next dial")
        machine.ended()
        XCTAssertEqual(machine.after(.reset), .no)
        XCTAssertEqual(machine.after(.status(503)), .no)
    }

    func testStatusesFollowRetryOn() {
        var fiveXX = RetryStateMachine(policy: RetryPolicy(attempts: 1, retryOn: ["5xx"]), method: "GET", head: head)
        fiveXX.ended()
        XCTAssertEqual(fiveXX.after(.status(404)), .no)
        XCTAssertEqual(fiveXX.after(.status(500)), .retry([head]))
        XCTAssertEqual(fiveXX.after(.status(500)), .exhausted)
        var istio = RetryStateMachine(policy: .istioDefault, method: "GET", head: head)
        istio.ended()
        XCTAssertEqual(istio.after(.status(503)), .no, "Istio's default retries no status without retriable codes")
        XCTAssertEqual(istio.after(.reset), .no, "nor a reset")
        XCTAssertEqual(istio.after(.connectFailure), .retry([]))
    }

    func testARequestNotWholeOrPastTheBufferLimitIsNotSentAgain() {
        var streaming = RetryStateMachine(policy: RetryPolicy(attempts: 2, retryOn: ["reset"]), method: "PUT", head: head)
        streaming.body(ByteBuffer(string: "part"))
        XCTAssertEqual(streaming.after(.reset), .no, "the body has not ended")
        var large = RetryStateMachine(policy: RetryPolicy(attempts: 2, retryOn: ["reset"]), method: "PUT", head: head)
        large.body(ByteBuffer(repeating: 0x61, count: RetryStateMachine.bufferLimit))
        large.ended()
        XCTAssertEqual(large.after(.reset), .no)
        var small = RetryStateMachine(policy: RetryPolicy(attempts: 2, retryOn: ["reset"]), method: "PUT", head: head)
        small.body(ByteBuffer(string: "ok"))
        small.ended()
        XCTAssertEqual(small.after(.reset), .retry([head, ByteBuffer(string: "ok")]))
    }

    /// Istio's default policy (pilot retry.DefaultPolicy(); 503 left out by
    /// EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY) retries connect failures alone: any method, and
    /// nothing of the request is kept, since nothing sent is ever sent again.
    func testIstiosDefaultRetriesConnectFailuresOfAnyMethodAndKeepsNoBody() {
        XCTAssertFalse(RetryPolicy.istioDefault.resendsSentRequests)
        XCTAssertTrue(RetryPolicy(attempts: 1, retryOn: ["503"]).resendsSentRequests, "a bare status code resends")
        XCTAssertTrue(RetryPolicy(attempts: 1, retryOn: ["connect-failure", "reset"]).resendsSentRequests)
        let post = ByteBuffer(string: "POST / HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\n\r\n")
        var machine = RetryStateMachine(policy: .istioDefault, method: "POST", head: post)
        machine.body(ByteBuffer(string: "hi"))
        machine.ended()
        XCTAssertEqual(machine.after(.status(503)), .no)
        XCTAssertEqual(machine.after(.reset), .no)
        XCTAssertEqual(machine.after(.connectFailure), .retry([]), "still queued for the next dial")
        XCTAssertEqual(machine.after(.connectFailure), .retry([]))
        XCTAssertEqual(machine.after(.connectFailure), .exhausted, "2 retries, then URX")
    }
}
