import Foundation
@testable import SluiceCore
import XCTest

/// The small JSON scanner `sluice learn` reads lines with must answer exactly as Foundation's
/// `JSONDecoder` does: the same fields, invalid where it throws `dataCorrupted`, another shape
/// where it throws another error. Checked on real lines, tricky JSON, every prefix, and seeded
/// mutations (the `learnline` fuzz target does the same with coverage guidance).
final class LearnFieldScannerTests: XCTestCase {
    static let samples: [String] = [
        String(LearnFixtures.http("aliyun.com", dst: "192.0.2.30:80").dropLast()),
        String(LearnFixtures.tls("www.aliyun.com", dst: "[2001:db8::30]:443").dropLast()),
        String(LearnFixtures.connect("git.example.com:22", dst: "192.0.2.40:3128").dropLast()),
        String(LearnFixtures.http("a\"b\\c\u{1}\u{2028}é", dst: "192.0.2.30:80").dropLast()),
        LearnFixtures.envoyTLS,
        LearnFixtures.envoyHTTP,
        #"{}"#,
        #"  { "start_time" : "2026-12-01T00:00:00Z" , "authority" : null }  "#,
        #"{"authority":"\u0061\u004C\uD83D\uDE00\/x","method":"\n\t\b\f\r"}"#,
        #"{"authority":"\uD83D"}"#,
        #"{"authority":"\uDE00\uD83D"}"#,
        #"{"authority":"\x41"}"#,
        #"{"authority":5}"#,
        #"{"authority":true,"start_time":"x"}"#,
        #"{"authority":{"nested":"authority"}}"#,
        #"{"other":{"authority":1,"deep":[1,2,{"a":[]}]},"authority":"ok"}"#,
        #"{"authority":"a","authority":"b"}"#,
        #"{"n":-0.5e+10,"m":0,"o":12.25E-3,"p":-7}"#,
        #"{"n":01}"#,
        #"{"n":1.}"#,
        #"{"n":.5}"#,
        #"{"n":-}"#,
        #"{"n":1e}"#,
        #"{"n":+1}"#,
        #"{"t":true,"f":false,"z":null}"#,
        #"{"t":tru}"#,
        #"{"a":1,}"#,
        #"{,"a":1}"#,
        #"{"a" 1}"#,
        #"{"a":1}}"#,
        #"{"a":1} x"#,
        #"{"a":[1,2,]}"#,
        "{\"a\":\"tab\tinside\"}",
        #"{'a':1}"#,
        #"{"a":NaN}"#,
        #"{"\u0061uthority":"escaped key"}"#,
        "{\"authority\":\"\u{0}\"}",
        #"{"start_time":"2026-12-01T00:00:00.000Z","protocol":"HTTP/1.1","authority":"ä.example.com"}"#,
        String(repeating: "[", count: 600),
        "{\"a\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}",
    ]

    private func outcomes(_ bytes: [UInt8]) -> (scanner: AccessLogFieldScanner.Outcome, foundation: AccessLogFieldScanner.Outcome) {
        bytes.withUnsafeBytes { (AccessLogFieldScanner.scan($0), AccessLogLineReader.decodeWithFoundation($0)) }
    }

    /// The scanner agrees with JSONDecoder wherever it accepts a line, and wherever the decoder
    /// rejects one; it may reject what the decoder lets pass only when that is not RFC 8259
    /// JSON (trailing commas, lax numbers), which the samples below pin down by name.
    private func assertAgrees(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let (scanner, foundation) = outcomes(bytes)
        if scanner == .invalidJSON, foundation != .invalidJSON { return }
        XCTAssertEqual(scanner, foundation, "\(what): \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
    }

    func testStricterThanJSONDecoderOnlyWhereJSONIsInvalid() {
        for lax in [#"{"n":01}"#, #"{"n":1.}"#, #"{"n":-}"#, #"{"n":1e}"#, #"{"a":1,}"#, #"{"a":[1,2,]}"#] {
            let (scanner, foundation) = outcomes(Array(lax.utf8))
            XCTAssertEqual(scanner, .invalidJSON, lax)
            XCTAssertNotEqual(foundation, .invalidJSON, "JSONDecoder lets \(lax) pass; if it stops, drop it from this list")
        }
    }

    func testSamplesAgreeWithJSONDecoder() {
        for sample in Self.samples { assertAgrees(Array(sample.utf8), "sample") }
    }

    func testEveryPrefixAgrees() {
        for sample in Self.samples.prefix(6) {
            let bytes = Array(sample.utf8)
            for cut in 0...bytes.count { assertAgrees(Array(bytes[0..<cut]), "prefix \(cut)") }
        }
    }

    func testSeededMutationsAgree() {
        var generator = SeededGenerator(seed: 2026)
        let alphabet = Array(#"{}[]":,\ 0123456789-+.eEtrufalsn"aAuU/bf\#u{0}\#u{1F}é"#.utf8) + [0x80, 0xC3, 0xFF, 0xED, 0xA0]
        for round in 0..<20_000 {
            var bytes = Array(Self.samples[round % Self.samples.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
                let byte = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where !bytes.isEmpty: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                default: if !bytes.isEmpty { bytes.remove(at: position) }
                }
            }
            assertAgrees(bytes, "mutation \(round)")
        }
    }

    func testReadsTheWantedFields() {
        let line = #"{"x":[{"authority":"inner"}],"authority":"api.example.com","protocol":"HTTP/1.1","start_time":null}"#
        guard case .fields(let fields) = Array(line.utf8).withUnsafeBytes({ AccessLogFieldScanner.scan($0) }) else {
            return XCTFail("not read")
        }
        XCTAssertEqual(fields.authority, "api.example.com", "only top-level keys count")
        XCTAssertEqual(fields.protocol, "HTTP/1.1")
        XCTAssertNil(fields.startTime)
    }
}
