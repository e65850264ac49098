@testable import SluiceCore
import XCTest

/// A big registry file is parsed in pieces on several threads: the result must be what one
/// piece gives — same entries in the same order, diagnostics on the file's own lines, and a
/// syntax error stopping the load at the same place.
final class RegistryParallelLoadTests: XCTestCase {
    /// `count` ServiceEntries, each 14 lines; entry `i` starts on line 14 * i + 1.
    private func registry(_ count: Int, replacing: [Int: String] = [:]) -> String {
        (0..<count).map { i in
            replacing[i] ?? """
                ---
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata:
                  name: svc-\(i)
                spec:
                  hosts:
                  - svc-\(i).example.com
                  ports:
                  - number: 443
                    name: tls
                    protocol: TLS
                  resolution: DNS
                  location: MESH_EXTERNAL

                """
        }.joined()
    }

    func testBigFileLoadsEveryEntryInOrder() {
        let yaml = registry(3000)
        XCTAssertGreaterThan(yaml.utf8.count, RegistryLoader.parallelParseMinimumBytes)
        let result = RegistryLoader.parse(yaml: yaml, path: "big.yaml")
        XCTAssertEqual(result.diagnostics.filter(\.isError), [])
        XCTAssertEqual(result.entries.count, 3000)
        XCTAssertEqual(result.entries.map(\.name), (0..<3000).map { "svc-\($0)" })
    }

    func testDiagnosticsKeepTheFilesLineNumbers() {
        let bad = """
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: bad
            spec:
              hosts:
              - bad.example.com
              ports:
              - number: 70000
                name: tls
                protocol: TLS
              resolution: DNS
              location: MESH_EXTERNAL

            """
        // Entry 2900 sits in the last piece; its port is on its 10th line.
        let result = RegistryLoader.parse(yaml: registry(3000, replacing: [2900: bad]), path: "big.yaml")
        XCTAssertEqual(result.entries.count, 2999)
        let error = result.diagnostics.first(where: \.isError)
        XCTAssertEqual(error?.line, 14 * 2900 + 10, "\(String(describing: error))")
    }

    func testSyntaxErrorStopsTheLoadWhereOnePieceWouldStop() {
        let broken = "---\nkind: [unclosed\n" + String(repeating: "\n", count: 13)
        let result = RegistryLoader.parse(yaml: registry(3000, replacing: [1000: broken]), path: "big.yaml")
        // Everything before the broken document loads, nothing after it.
        XCTAssertEqual(result.entries.count, 1000)
        XCTAssertEqual(result.entries.last?.name, "svc-999")
        XCTAssertEqual(result.diagnostics.filter(\.isError).count, 1)
    }

    func testChunksCutOnlyAtDocumentMarkersAndCoverTheText() {
        let yaml = "key: |\n  --- not a marker, indented\n" + registry(3000) + "--- {}\n---"
        let chunks = RegistryLoader.documentChunks(yaml, count: 4)
        XCTAssertEqual(chunks.count, 4)
        XCTAssertEqual(chunks.map(\.text).joined(), yaml)
        var line = 1
        for chunk in chunks {
            XCTAssertEqual(chunk.firstLine, line)
            if chunk.firstLine > 1 { XCTAssertTrue(chunk.text.hasPrefix("---")) }
            line += chunk.text.utf8.filter { $0 == UInt8(ascii: "\n") }.count
        }
        XCTAssertEqual(RegistryLoader.documentChunks("---\na: 1\n", count: 4).count, 1, "small texts stay whole")
    }
}
