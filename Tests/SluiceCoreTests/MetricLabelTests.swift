import SluiceCore
import XCTest

/// Label values for metrics: derived from cluster names and small enums only, and capped.
final class MetricLabelTests: XCTestCase {
    func testDestinationServiceIsTheRegisteredHostOfTheCluster() {
        XCTAssertEqual(MetricLabelValues.destinationService(cluster: "outbound|80||aliyun.com"), "aliyun.com")
        XCTAssertEqual(MetricLabelValues.destinationService(cluster: "outbound|443||*.aliyun.com"), "*.aliyun.com")
        XCTAssertEqual(MetricLabelValues.destinationService(cluster: "outbound|8080|v1|api.example.test"), "api.example.test")
    }

    func testFixedClustersStayAsTheyAre() {
        XCTAssertEqual(MetricLabelValues.destinationService(cluster: Decision.passthroughCluster), "PassthroughCluster")
        XCTAssertEqual(MetricLabelValues.destinationService(cluster: Decision.blackHoleCluster), "BlackHoleCluster")
    }

    func testAnythingElseIsUnknown() {
        for cluster in [nil, "", "-", "aliyun.com", "outbound|80||", "outbound|http||aliyun.com", "sideways|80||a.test",
                        "outbound|80||a.test|extra", "outbound||| a"] as [String?] {
            XCTAssertEqual(MetricLabelValues.destinationService(cluster: cluster), "unknown", "\(cluster ?? "nil")")
        }
    }

    func testResponseCodeLabelIsBounded() {
        XCTAssertEqual(MetricLabelValues.responseCode(200), "200")
        XCTAssertEqual(MetricLabelValues.responseCode(0), "0")
        XCTAssertEqual(MetricLabelValues.responseCode(999), "999")
        XCTAssertEqual(MetricLabelValues.responseCode(1000), "other")
        XCTAssertEqual(MetricLabelValues.responseCode(-1), "other")
    }

    func testResponseFlagsRenderLikeEnvoy() {
        XCTAssertEqual(MetricLabelValues.responseFlags([]), "-")
        XCTAssertEqual(MetricLabelValues.responseFlags(.noRouteFound), "NR")
        XCTAssertEqual(MetricLabelValues.responseFlags([.upstreamRetryLimitExceeded, .upstreamConnectionFailure]), "UF,URX")
    }

    func testCapAdmitsTheFirstValuesThenOther() {
        var cap = LabelValueCap(limit: 2, fixed: ["PassthroughCluster"])
        XCTAssertEqual(cap.admit("a.test"), "a.test")
        XCTAssertEqual(cap.admit("b.test"), "b.test")
        XCTAssertEqual(cap.admit("c.test"), "other")
        // Values already admitted keep their name, fixed ones always pass and do not count.
        XCTAssertEqual(cap.admit("a.test"), "a.test")
        XCTAssertEqual(cap.admit("PassthroughCluster"), "PassthroughCluster")
        XCTAssertEqual(cap.count, 2)
    }

    func testCapOfZeroAdmitsOnlyFixedValues() {
        var cap = LabelValueCap(limit: 0, fixed: ["unknown"])
        XCTAssertEqual(cap.admit("a.test"), "other")
        XCTAssertEqual(cap.admit("unknown"), "unknown")
    }

    func testIstioBuckets() {
        XCTAssertEqual(MetricBuckets.milliseconds.count, 19)
        XCTAssertEqual(MetricBuckets.milliseconds.first, 0.5)
        XCTAssertEqual(MetricBuckets.milliseconds.last, 3_600_000)
        XCTAssertEqual(MetricBuckets.bytes, [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000])
        XCTAssertEqual(MetricBuckets.milliseconds, MetricBuckets.milliseconds.sorted())
    }
}
