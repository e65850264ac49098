import SluiceCore
import XCTest

@testable import SluiceProxy

/// ProxyMetrics: Istio's names and labels, Sluice's own series, the cardinality cap, and the
/// two renderings.
final class MetricsTests: XCTestCase {
    private static func httpRecord(cluster: String?, code: Int = 200, flags: ResponseFlags = [], duration: Int64 = 12) -> AccessLogRecord {
        AccessLogRecord(
            method: "GET", path: "/secret/path", protocol: "HTTP/1.1", responseCode: code, responseFlags: flags,
            bytesReceived: 5, bytesSent: 2048, duration: duration, authority: "evil-host.test", upstreamCluster: cluster)
    }

    /// The value of the one sample whose line starts with `prefix` (name and labels, in order).
    private func sample(_ text: String, _ prefix: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }.map { String($0.dropFirst(prefix.count + 1)) }
    }

    func testRequestCompletedCountsWithIstioLabels() {
        let metrics = ProxyMetrics(role: .sidecar)
        metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||aliyun.com"))
        metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||aliyun.com"))
        metrics.requestCompleted(Self.httpRecord(cluster: Decision.blackHoleCluster, code: 502, flags: .noRouteFound))
        let text = metrics.prometheusText()
        let labels = #"reporter="source",destination_service="aliyun.com",destination_service_name="aliyun.com",request_protocol="http",response_code="200",response_flags="-""#
        XCTAssertEqual(sample(text, "istio_requests_total{\(labels)}"), "2", text)
        XCTAssertEqual(sample(text, #"istio_requests_total{reporter="source",destination_service="BlackHoleCluster",destination_service_name="BlackHoleCluster",request_protocol="http",response_code="502",response_flags="NR"}"#), "1", text)
        // Istio's buckets: 12 ms lands in le="25" but not le="10"; 2048 bytes in le="10000" not le="1000".
        XCTAssertEqual(sample(text, "istio_request_duration_milliseconds_bucket{\(labels),le=\"10.0\"}"), "0", text)
        XCTAssertEqual(sample(text, "istio_request_duration_milliseconds_bucket{\(labels),le=\"25.0\"}"), "2", text)
        XCTAssertEqual(sample(text, "istio_request_duration_milliseconds_count{\(labels)}"), "2", text)
        XCTAssertEqual(sample(text, "istio_response_bytes_bucket{\(labels),le=\"1000.0\"}"), "0", text)
        XCTAssertEqual(sample(text, "istio_response_bytes_bucket{\(labels),le=\"10000.0\"}"), "2", text)
        XCTAssertEqual(sample(text, "istio_request_bytes_sum{\(labels)}"), "10.0", text)
        XCTAssertTrue(text.contains("# TYPE istio_requests_total counter"), text)
        XCTAssertTrue(text.contains("# TYPE istio_request_duration_milliseconds histogram"), text)
        // Never a client-supplied value.
        XCTAssertFalse(text.contains("evil-host"), text)
        XCTAssertFalse(text.contains("/secret/path"), text)
    }

    func testGatewayReportsAsGateway() {
        let metrics = ProxyMetrics(role: .gateway)
        metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||aliyun.com"))
        XCTAssertTrue(metrics.prometheusText().contains(#"istio_requests_total{reporter="gateway",destination_service="aliyun.com""#))
    }

    /// At the gateway the caller is labelled as Istio's standard metrics label it
    /// (istio.io/latest/docs/reference/config/metrics/): `source_principal` is the SPIFFE ID
    /// of its verified certificate, `source_workload_namespace` that ID's namespace,
    /// `connection_security_policy` `mutual_tls`; a plaintext caller is `unknown`/`none`.
    func testGatewayLabelsTheCallersIdentity() {
        let metrics = ProxyMetrics(role: .gateway)
        var mtls = Self.httpRecord(cluster: "outbound|80||aliyun.com")
        mtls.downstreamPeerURISAN = "spiffe://cluster.local/ns/payments/sa/checkout"
        mtls.downstreamMutualTLS = true
        var memo = RequestSeriesMemo()
        metrics.requestCompleted(mtls, memo: &memo)
        metrics.requestCompleted(mtls, memo: &memo)
        // The same connection's memo must not count another caller's request in the first series.
        var other = mtls
        other.downstreamPeerURISAN = "spiffe://cluster.local/ns/default/sa/sleep"
        metrics.requestCompleted(other, memo: &memo)
        metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||aliyun.com"))
        metrics.tcpOpened(cluster: "outbound|443||aliyun.com", peerURISAN: mtls.downstreamPeerURISAN, mutualTLS: true)
        var closed = AccessLogRecord(bytesReceived: 7, upstreamCluster: "outbound|443||aliyun.com")
        closed.downstreamPeerURISAN = mtls.downstreamPeerURISAN
        closed.downstreamMutualTLS = true
        metrics.tcpClosed(closed)
        let text = metrics.prometheusText()
        let service = #"reporter="gateway",destination_service="aliyun.com",destination_service_name="aliyun.com""#
        let checkout = #"source_principal="spiffe://cluster.local/ns/payments/sa/checkout",source_workload_namespace="payments",connection_security_policy="mutual_tls""#
        let sleep = #"source_principal="spiffe://cluster.local/ns/default/sa/sleep",source_workload_namespace="default",connection_security_policy="mutual_tls""#
        let plain = #"source_principal="unknown",source_workload_namespace="unknown",connection_security_policy="none""#
        let http = #"request_protocol="http",response_code="200",response_flags="-""#
        XCTAssertEqual(sample(text, "istio_requests_total{\(service),\(checkout),\(http)}"), "2", text)
        XCTAssertEqual(sample(text, "istio_requests_total{\(service),\(sleep),\(http)}"), "1", text)
        XCTAssertEqual(sample(text, "istio_requests_total{\(service),\(plain),\(http)}"), "1", text)
        let tcp = #"reporter="gateway",destination_service="aliyun.com",destination_service_name="aliyun.com",\#(checkout),request_protocol="tcp""#
        XCTAssertEqual(sample(text, "istio_tcp_connections_opened_total{\(tcp)}"), "1", text)
        XCTAssertEqual(sample(text, "istio_tcp_connections_closed_total{\(tcp),response_flags=\"-\"}"), "1", text)
        XCTAssertEqual(sample(text, "istio_tcp_received_bytes_total{\(tcp)}"), "7", text)
        // The sidecar's series keep Istio's source-reporter label set without the caller's.
        let sidecar = ProxyMetrics(role: .sidecar)
        sidecar.requestCompleted(mtls)
        XCTAssertFalse(sidecar.prometheusText().contains("source_principal"))
    }

    /// A SPIFFE ID not of Istio's `ns/…/sa/…` shape has no namespace; a certificate without a
    /// URI SAN on a mutual-TLS connection is `unknown` but still `mutual_tls`.
    func testSourceIdentityLabelValues() {
        let odd = SourceIdentityLabels(peerURISAN: "spiffe://example.org/workload/x", mutualTLS: true)
        XCTAssertEqual(odd.principal, "spiffe://example.org/workload/x")
        XCTAssertEqual(odd.namespace, "unknown")
        let noSAN = SourceIdentityLabels(peerURISAN: nil, mutualTLS: true)
        XCTAssertEqual([noSAN.principal, noSAN.namespace, noSAN.securityPolicy], ["unknown", "unknown", "mutual_tls"])
        XCTAssertEqual(SourceIdentityLabels.plaintext.securityPolicy, "none")
    }

    func testTCPConnectionMetrics() {
        let metrics = ProxyMetrics(role: .sidecar)
        metrics.tcpOpened(cluster: "outbound|443||aliyun.com", peerURISAN: nil, mutualTLS: false)
        metrics.tcpOpened(cluster: "outbound|443||aliyun.com", peerURISAN: nil, mutualTLS: false)
        metrics.tcpClosed(AccessLogRecord(bytesReceived: 517, bytesSent: 4000, upstreamCluster: "outbound|443||aliyun.com"))
        metrics.tcpClosed(AccessLogRecord(responseFlags: .upstreamConnectionFailure, bytesReceived: 3, upstreamCluster: "outbound|443||aliyun.com"))
        let text = metrics.prometheusText()
        let labels = #"reporter="source",destination_service="aliyun.com",destination_service_name="aliyun.com",request_protocol="tcp""#
        XCTAssertEqual(sample(text, "istio_tcp_connections_opened_total{\(labels)}"), "2", text)
        XCTAssertEqual(sample(text, "istio_tcp_connections_closed_total{\(labels),response_flags=\"-\"}"), "1", text)
        XCTAssertEqual(sample(text, "istio_tcp_connections_closed_total{\(labels),response_flags=\"UF\"}"), "1", text)
        XCTAssertEqual(sample(text, "istio_tcp_received_bytes_total{\(labels)}"), "520", text)
        XCTAssertEqual(sample(text, "istio_tcp_sent_bytes_total{\(labels)}"), "4000", text)
    }

    func testSluiceOwnMetricsStartAtZeroAndCount() {
        let metrics = ProxyMetrics(role: .sidecar)
        var text = metrics.prometheusText()
        XCTAssertEqual(sample(text, #"sluice_denied_total{protocol="tls"}"#), "0", text)
        XCTAssertEqual(sample(text, #"sluice_sniff_total{outcome="timeout"}"#), "0", text)
        XCTAssertEqual(sample(text, #"sluice_config_reloads_total{result="failure"}"#), "0", text)

        metrics.denied(.http)
        metrics.denied(.http)
        metrics.denied(.connect)
        metrics.sniffed(.tls)
        metrics.configReloaded(success: true)
        metrics.configReloaded(success: false)
        metrics.configReloaded(success: false)
        metrics.registrySize(42)
        metrics.accessLogDropped(7)
        metrics.upstreamConnected(milliseconds: 3.5)
        metrics.upstreamConnected(milliseconds: .nan)
        text = metrics.prometheusText()
        XCTAssertEqual(sample(text, #"sluice_denied_total{protocol="http"}"#), "2", text)
        XCTAssertEqual(sample(text, #"sluice_denied_total{protocol="connect"}"#), "1", text)
        XCTAssertEqual(sample(text, #"sluice_sniff_total{outcome="tls"}"#), "1", text)
        XCTAssertEqual(sample(text, #"sluice_config_reloads_total{result="success"}"#), "1", text)
        XCTAssertEqual(sample(text, #"sluice_config_reloads_total{result="failure"}"#), "2", text)
        XCTAssertEqual(sample(text, "sluice_registry_service_entries"), "42.0", text)
        XCTAssertEqual(sample(text, "sluice_access_log_dropped_lines"), "7.0", text)
        XCTAssertEqual(sample(text, #"sluice_upstream_connect_duration_milliseconds_bucket{le="5.0"}"#), "1", text)
        XCTAssertEqual(sample(text, "sluice_upstream_connect_duration_milliseconds_count"), "1", text)
    }

    func testDestinationServicesAreCapped() {
        let metrics = ProxyMetrics(role: .sidecar)
        let cap = ProxyMetrics.maxDestinationServices
        for i in 0..<(cap + 50) {
            metrics.tcpOpened(cluster: "outbound|443||host\(i).test", peerURISAN: nil, mutualTLS: false)
        }
        // Fixed clusters still pass once the cap is reached.
        metrics.tcpOpened(cluster: Decision.passthroughCluster, peerURISAN: nil, mutualTLS: false)
        let text = metrics.prometheusText()
        let opened = text.split(separator: "\n").filter { $0.hasPrefix("istio_tcp_connections_opened_total{") }
        XCTAssertEqual(opened.count, cap + 2)
        XCTAssertEqual(sample(text, #"istio_tcp_connections_opened_total{reporter="source",destination_service="other",destination_service_name="other",request_protocol="tcp"}"#), "50")
        XCTAssertNotNil(sample(text, #"istio_tcp_connections_opened_total{reporter="source",destination_service="PassthroughCluster",destination_service_name="PassthroughCluster",request_protocol="tcp"}"#))
        XCTAssertFalse(text.contains("host\(cap).test"))
    }

    func testTwoInstancesCountSeparately() {
        let one = ProxyMetrics(role: .sidecar)
        let two = ProxyMetrics(role: .gateway)
        one.denied(.tcp)
        XCTAssertEqual(sample(one.prometheusText(), #"sluice_denied_total{protocol="tcp"}"#), "1")
        XCTAssertEqual(sample(two.prometheusText(), #"sluice_denied_total{protocol="tcp"}"#), "0")
    }

    func testConcurrentRecordingLosesNothing() {
        let metrics = ProxyMetrics(role: .sidecar)
        DispatchQueue.concurrentPerform(iterations: 4) { part in
            for i in 0..<2_000 {
                metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||s\((i + part) % 10).test"))
            }
        }
        let total = metrics.prometheusText().split(separator: "\n")
            .filter { $0.hasPrefix("istio_requests_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            .reduce(0, +)
        XCTAssertEqual(total, 8_000)
    }

    func testPlainTextIsEnvoyLikeAndSorted() {
        let metrics = ProxyMetrics(role: .sidecar)
        metrics.denied(.http)
        metrics.requestCompleted(Self.httpRecord(cluster: "outbound|80||aliyun.com"))
        let lines = metrics.plainText().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, lines.sorted())
        XCTAssertTrue(lines.contains(#"sluice_denied_total{protocol="http"}: 1"#), "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("istio_request_duration_milliseconds_count{") && $0.hasSuffix(": 1") }, "\(lines)")
        XCTAssertFalse(lines.contains { $0.hasPrefix("#") || $0.contains("_bucket{") }, "\(lines)")
    }

    func testPlainTextKeepsSpacesInLabelValues() {
        let text = """
            # TYPE x counter
            x{a="b c"} 3
            y 1.5
            z_bucket{le="1.0"} 2

            """
        XCTAssertEqual(ProxyMetrics.plainText(fromPrometheus: text + "w 2.0\n"), "w: 2\nx{a=\"b c\"}: 3\ny: 1.5\n")
    }
}
