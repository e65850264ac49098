import Foundation
@testable import SluiceInject
import XCTest
import Yams

/// The manifests under Fixtures/in are real ones (Istio's sleep sample, the Kubernetes
/// documentation's workload examples, pods annotated as Istio users write them); Fixtures/out
/// holds what `sluice inject` must make of them, reviewed by hand.
enum InjectFixtures {
    static var root: String {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("Fixtures missing from the test bundle")
        }
        return url.path
    }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }

    static let template = SidecarTemplate(image: "localhost/sluice:test")
}

final class ManifestInjectionTests: XCTestCase {
    private let injection = ManifestInjection(template: InjectFixtures.template)

    private func assertGolden(_ name: String, template: SidecarTemplate = InjectFixtures.template,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let injected = try ManifestInjection(template: template).inject(yaml: try InjectFixtures.text("in/\(name)"), path: name)
        let expected = try InjectFixtures.text("out/\(name)")
        if injected != expected {
            let lines = zip(injected.split(separator: "\n", omittingEmptySubsequences: false),
                            expected.split(separator: "\n", omittingEmptySubsequences: false))
            let first = lines.enumerated().first { $0.element.0 != $0.element.1 }
            XCTFail("out/\(name) differs at line \((first?.offset ?? 0) + 1): got \(first.map { "\"\($0.element.0)\"" } ?? "a different length")",
                    file: file, line: line)
        }
        // Injecting the result again changes nothing.
        XCTAssertEqual(try ManifestInjection(template: template).inject(yaml: expected, path: name), expected,
                       "injecting out/\(name) again changed it", file: file, line: line)
    }

    func testIstioSleepSampleNativeSidecar() throws {
        try assertGolden("sleep.yaml")
    }

    func testIstioSleepSampleClassicSidecar() throws {
        var classic = InjectFixtures.template
        classic.nativeSidecar = false
        let injected = try ManifestInjection(template: classic).inject(yaml: try InjectFixtures.text("in/sleep.yaml"), path: "sleep.yaml")
        XCTAssertEqual(injected, try InjectFixtures.text("out/sleep-classic.yaml"))
        XCTAssertEqual(try ManifestInjection(template: classic).inject(yaml: injected, path: "x"), injected)
    }

    func testEveryWorkloadKindAndPassThrough() throws {
        try assertGolden("workloads.yaml")
        let input = try Yams.compose_all(yaml: try InjectFixtures.text("in/workloads.yaml")).map { $0 }
        let output = try Yams.compose_all(yaml: try InjectFixtures.text("out/workloads.yaml")).map { $0 }
        XCTAssertEqual(output.count, input.count)
        for (before, after) in zip(input, output) {
            let kind = before.mapping.flatMap { YAMLNodes.text($0, "kind") } ?? "?"
            let text = try Yams.serialize(node: after)
            let injected = text.contains("name: sluice-init")
            XCTAssertEqual(injected, ["Pod", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"].contains(kind), kind)
            if !injected { XCTAssertEqual(after, before, "\(kind) must pass through unchanged") }
        }
    }

    func testIstioAnnotations() throws {
        try assertGolden("annotated.yaml")
        let items = try XCTUnwrap(try Yams.compose(yaml: try InjectFixtures.text("out/annotated.yaml"))?.mapping
            .flatMap { YAMLNodes.value($0, "items")?.sequence })
        let pods = Dictionary(uniqueKeysWithValues: items.compactMap { item -> (String, String)? in
            guard let name = item.mapping.flatMap({ YAMLNodes.value($0, "metadata")?.mapping }).flatMap({ YAMLNodes.text($0, "name") })
            else { return nil }
            return (name, (try? Yams.serialize(node: item)) ?? "")
        })
        XCTAssertFalse(try XCTUnwrap(pods["opted-out"]).contains("sluice"), "sidecar.istio.io/inject: \"false\" annotation")
        XCTAssertFalse(try XCTUnwrap(pods["label-opted-out"]).contains("sluice"), "sidecar.istio.io/inject=false label")
        XCTAssertFalse(try XCTUnwrap(pods["node-agent"]).contains("sluice"), "hostNetwork")
        // Compared line by line without indentation.
        let tuned = try XCTUnwrap(pods["tuned"]).split(separator: "\n")
            .map { $0.drop { $0 == " " } }.joined(separator: "\n")
        for expected in ["name: SLUICE_EXCLUDE_CIDRS\nvalue: 10.96.0.0/12,169.254.169.254/32",
                         "name: SLUICE_INCLUDE_CIDRS\nvalue: '*'",
                         "name: SLUICE_EXCLUDE_PORTS\nvalue: 5432,6379",
                         "- --concurrency\n- \"2\"",
                         "cpu: 50m", "memory: 32Mi", "memory: 256Mi",
                         "value: 8000,15000-15001,15021,15090",
                         "prometheus.io/port: \"8080\""] {
            XCTAssertTrue(tuned.contains(expected), "tuned pod lacks \(expected)")
        }
        XCTAssertFalse(tuned.contains("SLUICE_INCLUDE_PORTS"), "an empty includeOutboundPorts names no port")
        let classic = try XCTUnwrap(pods["classic"])
        XCTAssertFalse(classic.contains("restartPolicy: Always"), "sidecar.istio.io/nativeSidecar: \"false\"")
    }

    func testAuditAnnotationPutsThisWorkloadsSidecarInAuditMode() throws {
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: migrating
              annotations: {sluice.io/audit: "true"}
            spec:
              containers: [{name: app, image: app:1}]
            """
        let injected = try injection.inject(yaml: pod, path: "pod.yaml")
        XCTAssertTrue(injected.contains("- --audit"), injected)
        let plain = try injection.inject(yaml: pod.replacingOccurrences(of: "annotations: {sluice.io/audit: \"true\"}", with: ""), path: "pod.yaml")
        XCTAssertFalse(plain.contains("--audit"), plain)
    }

    func testInvalidYAMLIsPathAndLine() {
        XCTAssertThrowsError(try injection.inject(yaml: try InjectFixtures.text("in/invalid.yaml"), path: "invalid.yaml")) { error in
            XCTAssertEqual("\(error)", "invalid.yaml:9: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 8)")
        }
    }

    func testWrongShapeIsPathAndLine() {
        XCTAssertThrowsError(try injection.inject(yaml: try InjectFixtures.text("in/bad-containers.yaml"), path: "bad.yaml")) { error in
            XCTAssertEqual("\(error)", "bad.yaml:14: spec.containers must be a list")
        }
        XCTAssertThrowsError(try injection.inject(yaml: try InjectFixtures.text("in/bad-proxy-config.yaml"), path: "p.yaml")) { error in
            XCTAssertEqual("\(error)", "p.yaml:6: proxy.istio.io/config: concurrency must be a whole number, not lots")
        }
        XCTAssertThrowsError(try injection.inject(yaml: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", path: "d.yaml")) { error in
            XCTAssertEqual("\(error)", "d.yaml:1: Deployment: spec is missing")
        }
    }

    func testReservedPortsSysctlCanBeLeftOut() throws {
        var template = InjectFixtures.template
        template.reservedPortsSysctl = false
        let injected = try ManifestInjection(template: template).inject(yaml: try InjectFixtures.text("in/sleep.yaml"), path: "sleep.yaml")
        XCTAssertTrue(injected.contains("name: sluice-init"))
        XCTAssertFalse(injected.contains("ip_local_reserved_ports"))
        XCTAssertThrowsError(try injection.inject(yaml: "kind: Pod\napiVersion: v1\nspec:\n  securityContext:\n    sysctls: 3\n  containers: []\n", path: "s.yaml")) { error in
            XCTAssertEqual("\(error)", "s.yaml:5: spec.securityContext.sysctls must be a list")
        }
    }

    func testOtherGroupsAndEmptyDocumentsPassThrough() throws {
        let yaml = "apiVersion: example.com/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers: []\n---\n---\n"
        XCTAssertEqual(try injection.inject(yaml: yaml, path: "x"),
                       "apiVersion: example.com/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers: []\n")
        XCTAssertEqual(try injection.inject(yaml: "", path: "x"), "")
    }
}
