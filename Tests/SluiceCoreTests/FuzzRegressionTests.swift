import Foundation
import NIOCore
@testable import SluiceCore
import XCTest

/// Inputs the libFuzzer targets in Fuzz/ found, kept as plain tests so that `swift test` guards
/// the fixes without a fuzzer build. Each test names the target and the invariant it broke.
final class FuzzRegressionTests: XCTestCase {
    // MARK: FuzzClientHello

    /// A minimal TLS 1.2 ClientHello whose server_name carries `hostName` (the fuzz target's
    /// synthetic hello, without the record split).
    private func clientHello(hostName: String) -> [UInt8] {
        func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
        let name = Array(hostName.utf8)
        let entry = [UInt8(0)] + u16(name.count) + name
        let sniData = u16(entry.count) + entry
        let extensions = u16(0) + u16(sniData.count) + sniData
        var body: [UInt8] = [0x03, 0x03] + Array(repeating: 0x42, count: 32) + [0]
        body += u16(2) + [0x13, 0x01] + [1, 0] + u16(extensions.count) + extensions
        let message = [UInt8(1), 0] + u16(body.count) + body
        return [0x16, 0x03, 0x01] + u16(message.count) + message
    }

    /// Invariant "a returned SNI has no trailing dot": host_name "a.." came back as "a.", a
    /// second spelling of "a" that exact-host registry rules would not match.
    func testSNIWithEmptyLabelIsMalformed() {
        for hostName in ["a..", "aliyun.com..", ".aliyun.com", "aliyun..com", "..", ".."] {
            guard case .malformed = ClientHelloParser.parse(clientHello(hostName: hostName)) else {
                return XCTFail("\(hostName) should be malformed, got \(ClientHelloParser.parse(clientHello(hostName: hostName)))")
            }
        }
    }

    func testSNIWithOneTrailingDotStillLoadsWithoutIt() {
        XCTAssertEqual(ClientHelloParser.parse(clientHello(hostName: "Aliyun.COM.")), .clientHello(serverName: "aliyun.com"))
        XCTAssertEqual(ClientHelloParser.parse(clientHello(hostName: "a")), .clientHello(serverName: "a"))
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(bytes: clientHello(hostName: "x_y.test."))), .tls(serverName: "x_y.test"))
        XCTAssertEqual(ProtocolDetector.detect(ByteBuffer(bytes: clientHello(hostName: "a.."))), .opaque)
    }

    // MARK: FuzzRegistryLoader / FuzzConfig

    /// 31 lines whose merge keys (`<<`) each merge the previous mapping twice: 2^30 merges.
    private static let mergeBomb: String = {
        var lines = ["m0: &m0 {a: 1}"]
        for level in 1...30 { lines.append("m\(level): &m\(level) {<<: [*m\(level - 1), *m\(level - 1)]}") }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// Found as a libFuzzer timeout (> 10 s for one input): expanding merge keys was exponential,
    /// so a 1 KB ServiceEntry hung the loader, and with it a hot reload. Now refused, quickly.
    func testMergeKeyBombInServiceEntryIsRefusedQuickly() {
        let yaml = Self.mergeBomb + """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              <<: *m30
              name: bomb
            spec:
              hosts: [bomb.test]
              ports: [{number: 443, name: https, protocol: TLS}]
            """
        let started = ContinuousClock.now
        let result = RegistryLoader.parse(yaml: yaml, path: "bomb.yaml")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertTrue(result.entries.isEmpty)
        XCTAssertTrue(result.hasErrors, "\(result.diagnostics)")
    }

    func testMergeKeyBombInConfigIsRefusedQuickly() {
        let yaml = "accessLog:\n  <<: *m30\n  format: json\n"
        let started = ContinuousClock.now
        // The m0…m30 keys are unknown settings too; what matters is a prompt, clean refusal.
        guard case .failure(let diagnostics) = SluiceConfig.parse(yaml: Self.mergeBomb + yaml, path: "/etc/sluice/sluice.yaml") else {
            return XCTFail("merge bomb accepted")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertTrue(diagnostics.contains { $0.field == "accessLog" }, "\(diagnostics)")
    }

    /// The budget is far above real use: a resource built from a few shared fragments still loads.
    func testOrdinaryMergeKeysStillLoad() {
        let yaml = """
            defaults: &defaults
              apiVersion: networking.istio.io/v1
              kind: ServiceEntry
            ports: &ports {ports: [{number: 443, name: https, protocol: TLS}]}
            hosts: &hosts {hosts: [merged.test]}
            ---
            <<: *defaults
            metadata: {name: merged}
            spec:
              <<: [*ports, *hosts]
              resolution: DNS
            """
        let result = RegistryLoader.parse(yaml: yaml, path: "merge.yaml")
        XCTAssertEqual(result.entries.map(\.hosts), [["merged.test"]], "\(result.diagnostics)")
        XCTAssertEqual(result.entries.first?.ports.map(\.number), [443])
    }
}

final class AliasKeyRegressionTests: XCTestCase {
    func testAliasUsedAsAMappingKeyIsRefusedBeforeYamsHashesIt() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/known-issues/yams-alias-key-hash-timeout.yaml").standardized
        let yaml = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        let started = Date()
        let result = RegistryLoader.parse(yaml: yaml, path: "bomb.yaml")
        XCTAssertTrue(result.hasErrors)
        XCTAssertTrue(result.diagnostics.contains { $0.message.contains("alias") }, "\(result.diagnostics)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "refused by the pre-scan, not after expanding")
    }

    func testOrdinaryAliasesMergeKeysAndQuotedWildcardsStillLoad() {
        XCTAssertNil(YAMLReader.aliasUsedAsKey(in: "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\nhosts: [\"*.example.com\"]\nk: '*: no'\n# *x: comment\n"))
        XCTAssertEqual(YAMLReader.aliasUsedAsKey(in: "a: &x {b: 1}\nm:\n  *x : 1\n"), 3)
        XCTAssertEqual(YAMLReader.aliasUsedAsKey(in: "m: {*x: 1}\n"), 1)
    }
}
