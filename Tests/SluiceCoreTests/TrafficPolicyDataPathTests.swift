import SluiceCore
import XCTest

/// The DestinationRule traffic policy the data path applies: circuit breakers (Envoy "Circuit
/// breaking"; Istio ConnectionPoolSettings), outlier detection (Envoy "Outlier detection" and
/// outlier_detection.proto; source/common/upstream/outlier_detection_impl.cc's ejectHost and
/// checkHostForUneject) and load balancing (Envoy "Supported load balancers").
final class TrafficPolicyDataPathTests: XCTestCase {
    // MARK: connectionPool

    private func pool(_ build: (inout ConnectionPoolSettings) -> Void) -> ClusterLimits {
        var settings = ConnectionPoolSettings()
        build(&settings)
        return ClusterLimits(settings)
    }

    func testUnsetLimitsAreIstiosDefaultOfTwoToThe32MinusOne() {
        let limits = ClusterLimits(nil)
        XCTAssertEqual(limits.maxConnections, 4_294_967_295)
        XCTAssertEqual(limits.maxPendingRequests, 4_294_967_295)
        XCTAssertEqual(limits.maxRequests, 4_294_967_295)
        XCTAssertEqual(limits.maxRetries, 4_294_967_295)
        XCTAssertNil(limits.maxRequestsPerConnection, "Istio: 0 or unset means no limit")
        let zero = pool { $0.maxRequestsPerConnection = 0; $0.maxConnections = 0 }
        XCTAssertNil(zero.maxRequestsPerConnection)
        XCTAssertEqual(zero.maxConnections, ClusterLimits.unlimited)
    }

    /// The brief's circuit-breaking task (Istio "Circuit Breaking" task: maxConnections 1,
    /// http1MaxPendingRequests 1): the first request dials, the second waits, the third
    /// overflows with 503 UO.
    func testOneConnectionOnePendingThenOverflow() {
        var breaker = ClusterCircuitBreaker<String>(limits: pool { $0.maxConnections = 1; $0.http1MaxPendingRequests = 1 })
        XCTAssertEqual(breaker.openConnection("a"), .open)
        XCTAssertEqual(breaker.openConnection("b"), .pending)
        XCTAssertEqual(breaker.openConnection("c"), .overflow)
        XCTAssertEqual(breaker.pending, 1)
        XCTAssertTrue(breaker.hasWaiters)
        XCTAssertEqual(breaker.connectionClosed(), "b", "the slot goes to the waiter, still counted")
        XCTAssertEqual(breaker.connections, 1)
        XCTAssertEqual(breaker.openConnection("d"), .pending)
        breaker.cancelWaiting { $0 == "d" }
        XCTAssertNil(breaker.connectionClosed())
        XCTAssertEqual(breaker.connections, 0)
        XCTAssertEqual(breaker.openConnection("e"), .open)
    }

    func testRequestsAndRetriesOutstanding() {
        var breaker = ClusterCircuitBreaker<Int>(limits: pool { $0.http2MaxRequests = 2; $0.maxRetries = 1 })
        XCTAssertTrue(breaker.startRequest())
        XCTAssertTrue(breaker.startRequest())
        XCTAssertFalse(breaker.startRequest(), "upstream_rq_overflow")
        breaker.endRequest()
        XCTAssertTrue(breaker.startRequest())
        XCTAssertTrue(breaker.startRetry())
        XCTAssertFalse(breaker.startRetry(), "upstream_rq_retry_overflow: not retried")
        breaker.endRetry()
        XCTAssertTrue(breaker.startRetry())
    }

    // MARK: outlierDetection

    private func detector(_ build: (inout OutlierDetectionSettings) -> Void) -> OutlierDetector {
        var settings = OutlierDetectionSettings()
        build(&settings)
        return OutlierDetector(settings: .init(settings))
    }

    func testIstioDefaults() {
        let settings = OutlierDetector.Settings(OutlierDetectionSettings())
        XCTAssertEqual(settings.consecutive5xx, 5)
        XCTAssertEqual(settings.consecutiveGateway, 0, "gateway errors are off unless set")
        XCTAssertEqual(settings.interval, .seconds(10))
        XCTAssertEqual(settings.baseEjectionTime, .seconds(30))
        XCTAssertEqual(settings.maxEjectionPercent, 10)
    }

    func testConsecutive5xxEjectsAndASuccessResetsTheRun() {
        var detector = detector { $0.consecutive5xxErrors = 3; $0.maxEjectionPercent = 100 }
        let now = Duration.seconds(100)
        XCTAssertNil(detector.record(.status(500), endpoint: "a", endpointCount: 2, now: now))
        XCTAssertNil(detector.record(.status(503), endpoint: "a", endpointCount: 2, now: now))
        XCTAssertNil(detector.record(.status(200), endpoint: "a", endpointCount: 2, now: now), "a 2xx breaks the run")
        XCTAssertNil(detector.record(.status(500), endpoint: "a", endpointCount: 2, now: now))
        XCTAssertNil(detector.record(.connectFailure, endpoint: "a", endpointCount: 2, now: now))
        XCTAssertFalse(detector.isEjected("a"))
        let ejection = detector.record(.status(502), endpoint: "a", endpointCount: 2, now: now)
        XCTAssertEqual(ejection, .init(endpoint: "a", kind: "consecutive_5xx", duration: .seconds(30)))
        XCTAssertTrue(detector.isEjected("a"))
        XCTAssertFalse(detector.isEjected("b"))
    }

    func testGatewayErrorsCountOnly502503504AndConnectFailures() {
        var detector = detector { $0.consecutiveGatewayErrors = 2; $0.consecutive5xxErrors = 0; $0.maxEjectionPercent = 100 }
        XCTAssertNil(detector.record(.status(503), endpoint: "a", endpointCount: 2, now: .zero))
        XCTAssertNil(detector.record(.status(500), endpoint: "a", endpointCount: 2, now: .zero), "500 is no gateway error")
        XCTAssertNil(detector.record(.status(504), endpoint: "a", endpointCount: 2, now: .zero))
        XCTAssertEqual(detector.record(.connectFailure, endpoint: "a", endpointCount: 2, now: .zero)?.kind, "consecutive_gateway_failure")
    }

    /// ejectHost: ejected only while the share ejected *before* it is below maxEjectionPercent,
    /// so with the default 10% one endpoint of two is ejected, a second is not.
    func testMaxEjectionPercentAlwaysLetsOneGo() {
        var detector = detector { $0.consecutive5xxErrors = 1 }
        XCTAssertNotNil(detector.record(.status(500), endpoint: "a", endpointCount: 2, now: .zero))
        XCTAssertNil(detector.record(.status(500), endpoint: "b", endpointCount: 2, now: .zero), "50% ejected is not below 10%")
        XCTAssertFalse(detector.isEjected("b"))
        var half = self.detector { $0.consecutive5xxErrors = 1; $0.maxEjectionPercent = 50 }
        XCTAssertNotNil(half.record(.status(500), endpoint: "a", endpointCount: 4, now: .zero))
        XCTAssertNotNil(half.record(.status(500), endpoint: "b", endpointCount: 4, now: .zero), "25% < 50%")
        XCTAssertNil(half.record(.status(500), endpoint: "c", endpointCount: 4, now: .zero), "50% is not below 50%")
    }

    /// checkHostForUneject: back at the first interval sweep once base × ejections has passed;
    /// a second ejection lasts twice as long.
    func testUnejectedAtTheSweepAfterBaseTimesEjections() {
        var detector = detector { $0.consecutive5xxErrors = 1; $0.interval = .seconds(10); $0.baseEjectionTime = .seconds(15); $0.maxEjectionPercent = 100 }
        XCTAssertNotNil(detector.record(.status(500), endpoint: "a", endpointCount: 2, now: .zero))
        XCTAssertEqual(detector.sweepIfDue(now: .seconds(10)), [], "10s < 15s")
        XCTAssertTrue(detector.isEjected("a"))
        XCTAssertEqual(detector.sweepIfDue(now: .seconds(19)), [])
        XCTAssertEqual(detector.sweepIfDue(now: .seconds(20)), ["a"], "the sweep at 20s is the first past 15s")
        XCTAssertFalse(detector.isEjected("a"))
        let second = detector.record(.status(500), endpoint: "a", endpointCount: 2, now: .seconds(21))
        XCTAssertEqual(second?.duration, .seconds(30))
        XCTAssertEqual(detector.sweepIfDue(now: .seconds(45)), [])
        XCTAssertEqual(detector.sweepIfDue(now: .seconds(61)), ["a"])
    }

    func testEjectionTimeIsCappedAtEnvoysMaxEjectionTime() {
        var detector = detector { $0.consecutive5xxErrors = 1; $0.baseEjectionTime = .seconds(200); $0.maxEjectionPercent = 100 }
        var now = Duration.zero
        XCTAssertEqual(detector.record(.status(500), endpoint: "a", endpointCount: 1, now: now)?.duration, .seconds(200))
        now += .seconds(210)
        XCTAssertEqual(detector.sweepIfDue(now: now), ["a"])
        XCTAssertEqual(detector.record(.status(500), endpoint: "a", endpointCount: 1, now: now)?.duration, .seconds(300))
    }

    // MARK: loadBalancer

    func testPolicyNames() {
        XCTAssertEqual(LoadBalancerPolicy(nil), .roundRobin)
        XCTAssertEqual(LoadBalancerPolicy("LEAST_CONN"), .leastRequest, "Istio's deprecated name")
        XCTAssertEqual(LoadBalancerPolicy("RANDOM"), .random)
        XCTAssertEqual(LoadBalancerPolicy("PASSTHROUGH"), .passthrough)
    }

    func testRoundRobinTakesEachHealthyEndpointInTurnAndSkipsEjectedOnes() {
        var picker = EndpointPicker(policy: .roundRobin)
        let firsts = (0..<6).map { _ in picker.order(count: 3, isEjected: { _ in false }, outstanding: { _ in 0 }, random: { _ in 0 })[0] }
        XCTAssertEqual(firsts, [0, 1, 2, 0, 1, 2])
        let order = picker.order(count: 3, isEjected: { $0 == 1 }, outstanding: { _ in 0 }, random: { _ in 0 })
        XCTAssertEqual(order.last, 1, "an ejected endpoint is tried only after the healthy ones")
        XCTAssertEqual(Set(order), [0, 1, 2])
        let picks = (0..<4).map { _ in picker.order(count: 3, isEjected: { $0 == 1 }, outstanding: { _ in 0 }, random: { _ in 0 })[0] }
        XCTAssertFalse(picks.contains(1))
    }

    /// Below Envoy's 50% healthy panic threshold the balancer uses every endpoint.
    func testPanicThresholdSpreadsOverAllEndpoints() {
        var picker = EndpointPicker(policy: .roundRobin)
        let picks = (0..<3).map { _ in picker.order(count: 3, isEjected: { $0 != 2 }, outstanding: { _ in 0 }, random: { _ in 0 })[0] }
        XCTAssertEqual(Set(picks), [0, 1, 2])
    }

    func testLeastRequestIsPowerOfTwoChoices() {
        var picker = EndpointPicker(policy: .leastRequest)
        var draws = [0, 2].makeIterator()
        let order = picker.order(count: 3, isEjected: { _ in false }, outstanding: { [5, 0, 1][$0] }, random: { _ in draws.next() ?? 0 })
        XCTAssertEqual(order.first, 2, "of the two drawn (0 with 5 outstanding, 2 with 1) the less loaded")
    }

    func testRandomUsesTheSource() {
        var picker = EndpointPicker(policy: .random)
        XCTAssertEqual(picker.order(count: 4, isEjected: { _ in false }, outstanding: { _ in 0 }, random: { _ in 3 }).first, 3)
    }
}

/// Envoy's JitteredExponentialBackOffStrategy with the router's defaults (25 ms, 250 ms).
final class RetryBackOffTests: XCTestCase {
    func testTheBoundDoublesFrom25msUpTo250ms() {
        var backOff = RetryBackOff()
        let bounds = (0..<6).map { _ -> Duration in
            let bound = backOff.interval
            _ = backOff.next(sample: 0.5)
            return bound
        }
        XCTAssertEqual(bounds, [.milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(250), .milliseconds(250)])
    }

    func testWaitsAreDrawnBelowTheBound() {
        var backOff = RetryBackOff()
        XCTAssertEqual(backOff.next(sample: 0), .zero, "fully jittered: a wait may be nothing")
        XCTAssertEqual(backOff.next(sample: 0.5), .milliseconds(25))
        XCTAssertLessThan(backOff.next(sample: 1), .milliseconds(100))
    }
}
