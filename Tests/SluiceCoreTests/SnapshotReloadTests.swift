import Foundation
import SluiceCore
import XCTest

/// One bad object is rejected on its own; an object that was valid keeps its last good version.
final class SnapshotReloadTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "sluice-reload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/registry", withIntermediateDirectories: true)
        try write("sluice.yaml", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nregistry: [registry]\n")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ name: String, _ text: String) throws {
        try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
    }

    private func entry(_ name: String, host: String, port: String = "80") -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: \(name)}
        spec: {hosts: [\(host)], ports: [{number: \(port), name: http, protocol: HTTP}], resolution: DNS}

        """
    }

    private func load(previous: SluiceSnapshot? = nil) throws -> SluiceSnapshot {
        try SluiceSnapshot.load(configPath: directory + "/sluice.yaml", previous: previous).get()
    }

    func testAnInvalidObjectIsRejectedAloneAndTheRestApplies() throws {
        try write("registry/a.yaml", entry("good", host: "good.example") + "---\n" + entry("bad", host: "bad.example", port: "70000"))
        let snapshot = try load()
        XCTAssertEqual(snapshot.registry.entries.map(\.name), ["good"])
        XCTAssertEqual(snapshot.rejectedObjects, 1)
        XCTAssertTrue(snapshot.hasErrors, "check fails")
        let error = try XCTUnwrap(snapshot.diagnostics.first(where: \.isError))
        XCTAssertEqual(error.line, 9)
        XCTAssertTrue(error.description.hasSuffix("a.yaml:9: ServiceEntry default/bad: spec.ports[0].number: must be 1-65535, not 70000"), error.description)
    }

    func testAnObjectThatWasValidKeepsItsLastGoodVersion() throws {
        try write("registry/a.yaml", entry("first", host: "first.example") + "---\n" + entry("second", host: "second.example"))
        let before = try load()
        XCTAssertEqual(before.registry.entries.map(\.name), ["first", "second"])
        // An update breaks "first" and changes "second": second's update applies, first keeps its old version.
        try write("registry/a.yaml", entry("first", host: "first.example", port: "0") + "---\n" + entry("second", host: "second-v2.example"))
        let after = try load(previous: before)
        XCTAssertEqual(after.registry.entries.map(\.name), ["first", "second"], "kept in load order")
        XCTAssertEqual(after.registry.entries.map(\.hosts), [["first.example"], ["second-v2.example"]])
        XCTAssertEqual(after.rejectedObjects, 1)
        XCTAssertTrue(after.diagnostics.contains { $0.severity == .warning && $0.message.contains("keeping its last good version") })
        // Deleting the object removes it: only a rejected update keeps the old version.
        try write("registry/a.yaml", entry("second", host: "second-v2.example"))
        XCTAssertEqual(try load(previous: after).registry.entries.map(\.name), ["second"])
    }

    func testAFileThatNoLongerParsesKeepsItsObjectsAndOtherFilesApply() throws {
        try write("registry/a.yaml", entry("in-a", host: "a.example"))
        try write("registry/b.yaml", entry("in-b", host: "b.example"))
        let before = try load()
        try write("registry/a.yaml", "apiVersion: [\n")
        try write("registry/b.yaml", entry("in-b", host: "b2.example"))
        let after = try load(previous: before)
        XCTAssertEqual(after.registry.entries.map(\.name), ["in-a", "in-b"])
        XCTAssertEqual(after.registry.entries.last?.hosts, ["b2.example"])
        XCTAssertEqual(after.rejectedObjects, 1)
    }

    func testAMissingRegistryPathStillFailsTheWholeLoad() throws {
        try write("sluice.yaml", "registry: [nowhere]\n")
        guard case .failure(let diagnostics) = SluiceSnapshot.load(configPath: directory + "/sluice.yaml") else {
            return XCTFail("a registry path that does not exist is a config error")
        }
        XCTAssertTrue(diagnostics.map(\.description).joined().contains("no such file or directory"))
    }
}
