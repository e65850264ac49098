import Foundation
import SluiceCore
import XCTest

/// The JSON escaping of access-log values against a plain per-character reference, for the
/// word-at-a-time fast path: every special byte at every offset of a word, and random mixes.
final class AccessLogEscapingTests: XCTestCase {
    /// The escaping the access log promises, one Unicode scalar at a time.
    private static func reference(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// The JSON line of a record whose path is `value`, and the line the reference predicts.
    private func assertEscapes(_ value: String, file: StaticString = #filePath, line: UInt = #line) {
        let placeholder = "PLACEHOLDER"
        let template = AccessLogRecord(path: placeholder).jsonLine()
        let expected = template.replacingOccurrences(of: "\"\(placeholder)\"", with: "\"\(Self.reference(value))\"")
        XCTAssertEqual(AccessLogRecord(path: value).jsonLine(), expected, "value: \(value.debugDescription)", file: file, line: line)
    }

    private static let specials: [String] = [
        "\"", "\\", "\n", "\r", "\t", "\u{08}", "\u{0C}", "\u{00}", "\u{01}", "\u{1F}", "\u{7F}",
        "é", "€", "😀", "\u{2028}", "\u{2029}", "\u{2027}", "\u{80}", "\u{FFFD}",
    ]

    func testPlainValuesOfEveryLengthAreCopied() {
        let plain = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~"
        for length in 0...plain.count {
            assertEscapes(String(plain.prefix(length)))
        }
    }

    func testEverySpecialAtEveryOffset() {
        let plain = String(repeating: "a", count: 24)
        for special in Self.specials {
            for offset in 0...plain.count {
                var value = plain
                value.insert(contentsOf: special, at: value.index(value.startIndex, offsetBy: offset))
                assertEscapes(value)
                assertEscapes(String(value.prefix(offset + 1)))
            }
        }
    }

    func testBoundaryBytesOfTheWordTests() {
        // The printable ASCII edges (0x20, 0x7E) and the bytes next to `"` and `\`.
        for value in [" ", "~", "!", "#", "[", "]", "        ", "~~~~~~~~", "!#!#!#!#!#", "[]][[]][]"] {
            assertEscapes(value)
            assertEscapes(value + value + value)
        }
    }

    func testRandomMixes() {
        // A fixed LCG, so a failure reproduces.
        var seed: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        let pool = Self.specials + ["a", "b", "Z", "0", " ", "/", "~", "-", ":", "."]
        for _ in 0..<5_000 {
            var value = ""
            for _ in 0..<next(40) {
                // Mostly plain, so that long safe runs meet specials at random offsets.
                value += next(4) == 0 ? pool[next(pool.count)] : "x"
            }
            assertEscapes(value)
        }
    }
}
