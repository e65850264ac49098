import Logging
import NIOCore
import NIOPosix
import Prometheus
import SluiceCore
import XCTest

@testable import SluiceProxy

/// A cluster's DestinationRule state shared by event loops: a waiting request is handed its
/// connection slot on its own loop when one closes, an idle pooled connection is asked to close
/// when a request comes to wait, and refusals and ejections are counted (Envoy "Circuit
/// breaking": pending requests wait for a connection; `upstream_rq_pending_overflow`).
final class ClusterStateTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? self.group.syncShutdownGracefully()
    }

    private func cluster(_ registry: PrometheusCollectorRegistry, _ build: (inout TrafficPolicy) -> Void) -> ClusterState {
        var policy = TrafficPolicy()
        build(&policy)
        return ClusterState(
            name: "outbound|80||a.test", policy: policy, metrics: ClusterMetrics(registry: registry), logger: Logger(label: "test"))
    }

    private func scrape(_ registry: PrometheusCollectorRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    func testAWaiterGetsTheSlotOnItsLoopAndAnIdleConnectionIsAskedToClose() throws {
        let registry = PrometheusCollectorRegistry()
        let state = cluster(registry) { policy in
            var pool = ConnectionPoolSettings()
            pool.maxConnections = 1
            pool.http1MaxPendingRequests = 1
            policy.connectionPool = pool
        }
        let loop = self.group.next()
        let closed = loop.makePromise(of: Void.self)
        let dialled = loop.makePromise(of: Void.self)
        XCTAssertEqual(state.openConnection(ClusterState.Task(id: 0, eventLoop: loop) {}), .open)
        // The open connection goes idle in a pool: a waiter arriving now asks it to close.
        let id = state.pooled(on: loop) { closed.succeed() }
        XCTAssertNotEqual(id, 0)
        XCTAssertEqual(state.openConnection(ClusterState.Task(id: 0, eventLoop: loop) {
            XCTAssertTrue(loop.inEventLoop)
            dialled.succeed()
        }), .pending)
        try closed.futureResult.wait()
        XCTAssertTrue(state.hasWaiters)
        XCTAssertEqual(state.openConnection(ClusterState.Task(id: 0, eventLoop: loop) {}), .overflow)
        state.connectionClosed()
        try dialled.futureResult.wait()
        XCTAssertFalse(state.hasWaiters)
        XCTAssertTrue(scrape(registry).contains(#"sluice_upstream_overflow_total{cluster="outbound|80||a.test",limit="pending"} 1"#), scrape(registry))
    }

    func testWithoutAConnectionLimitNothingIsKeptForWaiters() {
        let state = cluster(PrometheusCollectorRegistry()) { $0.loadBalancer = "ROUND_ROBIN" }
        XCTAssertEqual(state.pooled(on: self.group.next()) {}, 0)
        XCTAssertFalse(state.hasWaiters)
    }

    func testTheBalancerOrdersAddressesAndOutlierDetectionPutsAnEjectedOneLast() throws {
        let registry = PrometheusCollectorRegistry()
        let state = cluster(registry) { policy in
            var outlier = OutlierDetectionSettings()
            outlier.consecutive5xxErrors = 1
            policy.outlierDetection = outlier
        }
        let a = try SocketAddress(ipAddress: "192.0.2.1", port: 80)
        let b = try SocketAddress(ipAddress: "192.0.2.2", port: 80)
        XCTAssertEqual(state.order([a, b]).first, a)
        XCTAssertEqual(state.order([a, b]).first, b, "ROUND_ROBIN by default")
        state.record(.status(503), endpoint: a.logDescription)
        XCTAssertEqual(state.order([a, b]), [b, a])
        XCTAssertEqual(state.order([a, b]), [b, a], "a stays out")
        XCTAssertTrue(scrape(registry).contains(#"sluice_outlier_ejections_total{cluster="outbound|80||a.test"} 1"#), scrape(registry))
    }

    func testStatesAreKeptAcrossReloadsWhileThePolicyIsTheSame() {
        let states = ClusterStates(metrics: ClusterMetrics(registry: PrometheusCollectorRegistry()), logger: Logger(label: "test"))
        var policy = TrafficPolicy()
        policy.loadBalancer = "RANDOM"
        let first = states.state(for: "outbound|80||a.test", policy: policy)
        XCTAssertTrue(first === states.state(for: "outbound|80||a.test", policy: policy))
        policy.loadBalancer = "ROUND_ROBIN"
        XCTAssertFalse(first === states.state(for: "outbound|80||a.test", policy: policy))
    }
}
