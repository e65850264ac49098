import SluiceCore
import XCTest

@testable import SluiceProxy

/// ProxyMetrics' per-request fast path (a connection's memo of its last series) and the
/// lookup by service give the same series, cap included.
final class MetricsMemoTests: XCTestCase {
    private static func record(cluster: String?, code: Int = 200, flags: ResponseFlags = []) -> AccessLogRecord {
        AccessLogRecord(responseCode: code, responseFlags: flags, bytesReceived: 1, bytesSent: 1, duration: 1, upstreamCluster: cluster)
    }

    private func requests(_ text: String, service: String, code: String = "200", flags: String = "-") -> Int? {
        let prefix = #"istio_requests_total{reporter="source",destination_service="\#(service)",destination_service_name="\#(service)",request_protocol="http",response_code="\#(code)",response_flags="\#(flags)"} "#
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    func testRepeatedRequestsAndClustersOfOneServiceShareASeries() {
        let metrics = ProxyMetrics(role: .sidecar)
        // One connection's memo sees every kind in turn: it must follow, never stick.
        var memo = RequestSeriesMemo()
        for _ in 0..<50 {
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test"), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: "outbound|443||a.test"), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503, flags: .upstreamConnectionFailure), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503, flags: .upstreamConnectionFailure), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: nil, code: 1234), memo: &memo)
            metrics.requestCompleted(Self.record(cluster: "not a cluster", code: -5), memo: &memo)
        }
        for _ in 0..<50 {
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test"))
            metrics.requestCompleted(Self.record(cluster: "outbound|443||a.test"))
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503, flags: .upstreamConnectionFailure))
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503, flags: .upstreamConnectionFailure))
            metrics.requestCompleted(Self.record(cluster: "outbound|80||a.test", code: 503))
            metrics.requestCompleted(Self.record(cluster: nil, code: 1234))
            metrics.requestCompleted(Self.record(cluster: "not a cluster", code: -5))
        }
        let text = metrics.prometheusText()
        XCTAssertEqual(requests(text, service: "a.test"), 200, text)
        XCTAssertEqual(requests(text, service: "a.test", code: "503", flags: "UF"), 200, text)
        XCTAssertEqual(requests(text, service: "a.test", code: "503"), 100, text)
        // nil and a malformed name are both `unknown`; both codes are `other`.
        XCTAssertEqual(requests(text, service: "unknown", code: "other"), 200, text)
    }

    func testCapHoldsOnTheFastPath() {
        let metrics = ProxyMetrics(role: .sidecar)
        let cap = ProxyMetrics.maxDestinationServices
        for round in 0..<3 {
            for i in 0..<(cap + 10) {
                metrics.requestCompleted(Self.record(cluster: "outbound|80||h\(i).test"))
            }
            // TCP shares the admitted services with HTTP.
            metrics.tcpOpened(cluster: "outbound|80||h\(cap + round).test", peerURISAN: nil, mutualTLS: false)
            metrics.tcpOpened(cluster: "outbound|80||h0.test", peerURISAN: nil, mutualTLS: false)
        }
        metrics.requestCompleted(Self.record(cluster: Decision.passthroughCluster))
        let text = metrics.prometheusText()
        XCTAssertEqual(requests(text, service: "h0.test"), 3)
        XCTAssertEqual(requests(text, service: "h\(cap - 1).test"), 3)
        XCTAssertNil(requests(text, service: "h\(cap).test"))
        XCTAssertEqual(requests(text, service: "other"), 30)
        XCTAssertEqual(requests(text, service: Decision.passthroughCluster), 1)
        let series = text.split(separator: "\n").filter { $0.hasPrefix("istio_requests_total{") }
        XCTAssertEqual(series.count, cap + 2)
        XCTAssertTrue(text.contains(#"istio_tcp_connections_opened_total{reporter="source",destination_service="other",destination_service_name="other",request_protocol="tcp"} 3"#), text)
        XCTAssertTrue(text.contains(#"istio_tcp_connections_opened_total{reporter="source",destination_service="h0.test",destination_service_name="h0.test",request_protocol="tcp"} 3"#), text)
    }
}
