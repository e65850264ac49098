import SluiceCore
import XCTest

/// `sluice replay`'s tally and the decision on logged traffic, on the e2e suite's real log.
final class ReplayTests: XCTestCase {
    private func registry(_ yaml: String) -> Registry {
        Registry(RegistryLoader.parse(yaml: yaml, path: "replay.yaml").entries)
    }

    private static let aliyun = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: aliyun}
        spec: {hosts: [aliyun.com], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
        """

    func testLoggedTrafficIsDecidedByTheDecisionStage() throws {
        let policy = Policy(mode: .registryOnly, registry: registry(Self.aliyun), gateway: nil)
        let reader = AccessLogLineReader()
        let allowed = try XCTUnwrap(reader.read(#"{"start_time":"2026-12-07T05:21:34.712Z","method":"GET","protocol":"HTTP/1.1","authority":"aliyun.com","downstream_local_address":"192.0.2.30:80","upstream_cluster":"PassthroughCluster","response_flags":"-"}"#)?.get())
        XCTAssertEqual(policy.decide(allowed)?.isDenied, false)
        let other = try XCTUnwrap(reader.read(#"{"start_time":"2026-12-07T05:21:34.712Z","method":"GET","protocol":"HTTP/1.1","authority":"aliyun.com:8080","downstream_local_address":"192.0.2.30:8080","upstream_cluster":"PassthroughCluster"}"#)?.get())
        XCTAssertEqual(policy.decide(other)?.denial, .httpStatus(502), "a port the registry does not declare")
        let opaque = LoggedConnection(traffic: .tcp, destination: nil, port: 5432)
        XCTAssertNil(policy.decide(opaque), "opaque TCP without its destination cannot be decided")
    }

    func testAnAuditedLineWentThroughAndANoRouteLineDidNot() throws {
        let reader = AccessLogLineReader()
        let audited = try XCTUnwrap(reader.read(#"{"start_time":"2026-12-07T05:21:34.712Z","protocol":"HTTP/1.1","authority":"evil.example","downstream_local_address":"203.0.113.9:80","upstream_cluster":"BlackHoleCluster","route_name":"block_all","istio_policy_status":"audit_denied"}"#)?.get())
        XCTAssertFalse(audited.wasDenied, "audit mode let it through")
        let denied = try XCTUnwrap(reader.read(#"{"start_time":"2026-12-07T05:21:34.712Z","protocol":"HTTP/1.1","authority":"evil.example","downstream_local_address":"203.0.113.9:80","upstream_cluster":"BlackHoleCluster","response_flags":"NR"}"#)?.get())
        XCTAssertTrue(denied.wasDenied)
    }

    func testSummaryOfTheE2ELog() throws {
        let log = try String(contentsOfFile: RegistryFixtures.path("learn/e2e-sidecar-access.log"), encoding: .utf8)
        let policy = Policy(mode: .registryOnly, registry: registry(Self.aliyun), gateway: nil)
        let reader = AccessLogLineReader()
        var summary = ReplaySummary()
        var lines = 0
        for line in log.split(separator: "\n") {
            guard case .success(let logged)? = reader.read(String(line)) else { continue }
            lines += 1
            summary.add(logged, policy.decide(logged))
        }
        XCTAssertEqual(summary.decided + summary.undecidable, lines)
        XCTAssertEqual(summary.allowed + summary.denied, summary.decided)
        XCTAssertGreaterThan(summary.allowed, 0, "aliyun.com:80 is registered")
        XCTAssertGreaterThan(summary.newlyDenied, 0)
        XCTAssertNil(summary.newlyDeniedByDestination["http aliyun.com:80"])
        XCTAssertNotNil(summary.newlyDeniedByDestination["tls www.aliyun.com:443"])
        let report = summary.report(limit: 2)
        XCTAssertEqual(report.first, "decided: \(summary.decided) (allowed \(summary.allowed), denied \(summary.denied))")
        XCTAssertTrue(report.contains { $0.hasPrefix("  … and ") } || summary.newlyDeniedByDestination.count <= 2)
        // Under the learned registry of the same log, nothing is newly denied.
        var learner = AccessLogLearner()
        learner.read(log: log)
        let learned = LearnedRegistry(learner.traffic, options: .init(foldThreshold: nil, minCount: 1, takenNames: []))
        let learnedPolicy = Policy(mode: .registryOnly, registry: registry(learned.yaml(header: [])), gateway: nil)
        var again = ReplaySummary()
        for line in log.split(separator: "\n") {
            guard case .success(let logged)? = reader.read(String(line)) else { continue }
            again.add(logged, learnedPolicy.decide(logged))
        }
        XCTAssertEqual(again.newlyDenied, 0, again.report().joined(separator: "\n"))
    }
}
