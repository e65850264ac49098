import SluiceCore
import XCTest

/// The downward API's labels file (Kubernetes "Expose Pod Information to Containers Through
/// Files": `metadata.labels` written one `key="value"` a line, Go-quoted) and selection.
final class WorkloadIdentityRoutingTests: XCTestCase {
    func testDownwardAPILabelsFile() throws {
        let text = "app=\"istio-egressgateway\"\nistio=\"egressgateway\"\npod-template-hash=\"5d8b9f\"\nnote=\"a \\\"quoted\\\" \\\\ value\\n\"\n\n"
        let labels = try LabelsFile.parse(text).get()
        XCTAssertEqual(labels["istio"], "egressgateway")
        XCTAssertEqual(labels["pod-template-hash"], "5d8b9f")
        XCTAssertEqual(labels["note"], "a \"quoted\" \\ value\n")
        XCTAssertEqual(labels.count, 4)
        XCTAssertEqual(try LabelsFile.parse("u=\"caf\\u00e9\"").get()["u"], "café")
    }

    func testMalformedLinesFailWithTheirLineNumber() {
        XCTAssertEqual(LabelsFile.parse("a=\"1\"\nb=2").failureLine, 2)
        XCTAssertEqual(LabelsFile.parse("novalue").failureLine, 1)
        XCTAssertEqual(LabelsFile.parse("a=\"open").failureLine, 1)
        XCTAssertEqual(LabelsFile.parse("a=\"bad \\q\"").failureLine, 1)
    }

    func testSelectorsAreSubsetsOfTheLabels() {
        let identity = WorkloadIdentity(namespace: "prod", labels: ["app": "web", "version": "v1"])
        XCTAssertTrue(identity.isSelected(by: [:]))
        XCTAssertTrue(identity.isSelected(by: ["app": "web"]))
        XCTAssertFalse(identity.isSelected(by: ["app": "web", "tier": "front"]))
    }

    func testDurationsAsIstioWritesThem() {
        XCTAssertEqual(RoutingDurations.parse("5s"), .seconds(5))
        XCTAssertEqual(RoutingDurations.parse("0.5s"), .milliseconds(500))
        XCTAssertEqual(RoutingDurations.parse("250ms"), .milliseconds(250))
        XCTAssertEqual(RoutingDurations.parse("1m"), .seconds(60))
        XCTAssertNil(RoutingDurations.parse("5"))
        XCTAssertNil(RoutingDurations.parse("-1s"))
        XCTAssertEqual(RoutingDurations.format(.milliseconds(1500)), "1500ms")
        XCTAssertEqual(RoutingDurations.format(.seconds(10)), "10s")
    }
}

extension Result where Failure == LabelsFile.LineError {
    var failureLine: Int? {
        if case .failure(let error) = self { return error.line }
        return nil
    }
}
