@testable import SluiceInject
import XCTest
import Yams

/// DNS and UDP capture asked for by annotation (Fixtures/in/capture.yaml) or mesh-wide by the
/// template: the init container's flags, the sidecar's environment and capability, the sysctl.
final class CaptureAnnotationTests: XCTestCase {
    /// The injected pods of in/capture.yaml by name, each as its YAML lines without indentation.
    private func injectedPods(_ template: SidecarTemplate = InjectFixtures.template) throws -> [String: String] {
        let output = try ManifestInjection(template: template).inject(yaml: try InjectFixtures.text("in/capture.yaml"), path: "capture.yaml")
        let items = try XCTUnwrap(try Yams.compose(yaml: output)?.mapping.flatMap { YAMLNodes.value($0, "items")?.sequence })
        var pods: [String: String] = [:]
        for item in items {
            let name = try XCTUnwrap(item.mapping.flatMap { YAMLNodes.value($0, "metadata")?.mapping }.flatMap { YAMLNodes.text($0, "name") })
            pods[name] = try Yams.serialize(node: item).split(separator: "\n").map { $0.drop { $0 == " " } }.joined(separator: "\n")
        }
        return pods
    }

    private let dnsOn = ["args:\n- --capture-dns\n", "name: SLUICE_CAPTURE_DNS\nvalue: \"true\"", "value: 15000-15001,15021,15090,15053"]
    private let udpOn = ["- --capture-udp", "name: SLUICE_CAPTURE_UDP\nvalue: \"true\"",
                         "capabilities:\nadd:\n- NET_ADMIN\ndrop:\n- ALL", "runAsGroup: 1337\nrunAsNonRoot: false\nrunAsUser: 0"]

    private func assert(_ pod: String?, has: [String], lacks: [String], _ name: String, line: UInt = #line) throws {
        let pod = try XCTUnwrap(pod, name, line: line)
        for text in has { XCTAssertTrue(pod.contains(text), "\(name) lacks \(text)", line: line) }
        for text in lacks { XCTAssertFalse(pod.contains(text), "\(name) has \(text)", line: line) }
    }

    func testIstioProxyMetadataTurnsOnDNSCapture() throws {
        let pods = try injectedPods()
        try assert(pods["istio-dns"], has: dnsOn, lacks: udpOn, "istio-dns")
        // The sidecar itself keeps its non-root uid without UDP capture.
        try assert(pods["istio-dns"], has: ["runAsNonRoot: true\nrunAsUser: 1337"], lacks: [], "istio-dns")
    }

    /// Istio's "DNS Proxying" page turns both on per pod in `proxy.istio.io/config`.
    func testIstioProxyMetadataTurnsOnAutoAllocation() throws {
        let pods = try injectedPods()
        let autoAllocate = "name: SLUICE_DNS_AUTO_ALLOCATE\nvalue: \"true\""
        try assert(pods["istio-dns-auto-allocate"], has: dnsOn + [autoAllocate], lacks: udpOn, "istio-dns-auto-allocate")
        for name in ["istio-dns", "udp-and-dns", "dns-turned-off", "plain"] {
            try assert(pods[name], has: [], lacks: ["SLUICE_DNS_AUTO_ALLOCATE"], name)
        }
    }

    func testSluiceAnnotationsTurnOnBoth() throws {
        let pods = try injectedPods()
        try assert(pods["udp-and-dns"], has: udpOn + ["args:\n- --capture-udp\n- --capture-dns", "SLUICE_CAPTURE_DNS", "runAsGroup: 1337"],
                   lacks: [], "udp-and-dns")
    }

    func testSluiceAnnotationWinsOverProxyMetadata() throws {
        let pods = try injectedPods()
        try assert(pods["dns-turned-off"], has: [], lacks: ["--capture-dns", "SLUICE_CAPTURE_DNS", "15053"], "dns-turned-off")
        try assert(pods["plain"], has: ["value: 15000-15001,15021,15090"], lacks: ["--capture", "SLUICE_CAPTURE", "NET_ADMIN\ndrop", "15053"], "plain")
    }

    func testMeshWideDefaultAppliesWhereThePodDoesNotSay() throws {
        var template = InjectFixtures.template
        template.captureDNS = true
        template.captureUDP = true
        let pods = try injectedPods(template)
        try assert(pods["plain"], has: dnsOn.dropFirst() + udpOn, lacks: [], "plain, mesh-wide")
        try assert(pods["dns-turned-off"], has: udpOn, lacks: ["--capture-dns", "SLUICE_CAPTURE_DNS"], "dns-turned-off, mesh-wide")
    }

    func testBadProxyMetadataIsPathAndLine() {
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              annotations:
                proxy.istio.io/config: "proxyMetadata: {ISTIO_META_DNS_CAPTURE: maybe}"
            spec:
              containers: [{name: app, image: app:1}]
            """
        XCTAssertThrowsError(try ManifestInjection(template: InjectFixtures.template).inject(yaml: pod, path: "p.yaml")) { error in
            XCTAssertEqual("\(error)", "p.yaml:6: proxy.istio.io/config: proxyMetadata.ISTIO_META_DNS_CAPTURE must be \"true\" or \"false\", not maybe")
        }
        XCTAssertThrowsError(try ManifestInjection(template: InjectFixtures.template).inject(
            yaml: pod.replacingOccurrences(of: "{ISTIO_META_DNS_CAPTURE: maybe}", with: "[x]"), path: "p.yaml")) { error in
            XCTAssertEqual("\(error)", "p.yaml:6: proxy.istio.io/config: proxyMetadata must be a mapping of names to strings")
        }
        XCTAssertThrowsError(try ManifestInjection(template: InjectFixtures.template).inject(
            yaml: pod.replacingOccurrences(of: "ISTIO_META_DNS_CAPTURE: maybe", with: "ISTIO_META_DNS_AUTO_ALLOCATE: yes please"), path: "p.yaml")) { error in
            XCTAssertEqual("\(error)", "p.yaml:6: proxy.istio.io/config: proxyMetadata.ISTIO_META_DNS_AUTO_ALLOCATE must be \"true\" or \"false\", not yes please")
        }
    }
}
