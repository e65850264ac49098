import NIOPosix
import XCTest

@testable import SluiceProxy

/// `/healthz/ready` on the health port, and the stats port's scrape endpoint.
final class HealthServerTests: XCTestCase {
    func testReadinessFollowsTheLifecycle() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let readiness = Readiness()
        let channel = try await HealthServer.bind(host: "127.0.0.1", port: 0, group: group, readiness: readiness)
        let address = try XCTUnwrap(channel.localAddress)

        var answer = try await AdminTestClient.get("/healthz/ready", from: address, group: group)
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.body, "starting\n")

        readiness.markReady()
        answer = try await AdminTestClient.get("/healthz/ready", from: address, group: group)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.body, "ready\n")

        readiness.markDraining()
        answer = try await AdminTestClient.get("/healthz/ready", from: address, group: group)
        XCTAssertEqual(answer.status, 503)
        XCTAssertEqual(answer.body, "draining\n")

        answer = try await AdminTestClient.get("/healthz/live", from: address, group: group)
        XCTAssertEqual(answer.status, 404)
        answer = try await AdminTestClient.get("/healthz/ready", method: "DELETE", from: address, group: group)
        XCTAssertEqual(answer.status, 405)

        try await channel.close()
        try await group.shutdownGracefully()
    }

    func testDrainingIsFinal() {
        let readiness = Readiness()
        XCTAssertEqual(readiness.state, .starting)
        readiness.markDraining()
        readiness.markReady()
        XCTAssertEqual(readiness.state, .draining)
        XCTAssertFalse(readiness.isReady)
    }

    func testStatsServerServesPrometheusText() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = ProxyMetrics(role: .sidecar)
        let channel = try await StatsServer.bind(host: "127.0.0.1", port: 0, group: group, metrics: metrics)
        let address = try XCTUnwrap(channel.localAddress)

        metrics.denied(.tls)
        var record = AccessLogRecordFixture.http
        record.upstreamCluster = "outbound|80||aliyun.com"
        metrics.requestCompleted(record)
        let answer = try await AdminTestClient.get("/stats/prometheus", from: address, group: group)
        XCTAssertEqual(answer.status, 200)
        XCTAssertTrue(answer.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") ?? false, "\(answer.headers)")
        XCTAssertTrue(answer.body.contains("sluice_denied_total{protocol=\"tls\"} 1\n"), answer.body)
        XCTAssertTrue(answer.body.contains("istio_requests_total{reporter=\"source\",destination_service=\"aliyun.com\""), answer.body)

        let other = try await AdminTestClient.get("/stats", from: address, group: group)
        XCTAssertEqual(other.status, 404)

        try await channel.close()
        try await group.shutdownGracefully()
    }
}
