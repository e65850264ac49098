import NIOCore
import XCTest

@testable import SluiceCore

/// The cursor heads and log lines are written through: numbers, literals, strings, and the
/// buffer's writer index moved by exactly what was written.
final class BoundedWriterTests: XCTestCase {
    private func written(bound: Int = 128, _ body: (inout BoundedWriter) -> Void) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeString("<")
        buffer.writeBounded(bound, body)
        buffer.writeString(">")
        return String(buffer: buffer)
    }

    func testDecimals() {
        XCTAssertEqual(written { $0.writeDecimal(UInt64(0)) }, "<0>")
        XCTAssertEqual(written { $0.writeDecimal(UInt64(9)) }, "<9>")
        XCTAssertEqual(written { $0.writeDecimal(UInt64(10)) }, "<10>")
        XCTAssertEqual(written { $0.writeDecimal(UInt64.max) }, "<18446744073709551615>")
        XCTAssertEqual(written { $0.writeDecimal(Int64(-7)) }, "<-7>")
        XCTAssertEqual(written { $0.writeDecimal(Int64.min) }, "<-9223372036854775808>")
        XCTAssertEqual(written { $0.writeDecimal(Int64.max) }, "<9223372036854775807>")
    }

    func testPaddedKeepsTheLastDigits() {
        XCTAssertEqual(written { $0.writePadded(7, width: 3) }, "<007>")
        XCTAssertEqual(written { $0.writePadded(200, width: 3) }, "<200>")
        XCTAssertEqual(written { $0.writePadded(2026, width: 4) }, "<2026>")
    }

    func testLiteralsBytesAndStrings() {
        let text = written { w in
            w.write("HTTP/1.1 ")
            w.write(UInt8(ascii: "x"))
            w.write(string: "ünïcode, and a string longer than sixteen bytes")
            [UInt8]("12345678".utf8).withUnsafeBytes { w.write(bytes: $0) }
            w.write(string: "")
        }
        XCTAssertEqual(text, "<HTTP/1.1 xünïcode, and a string longer than sixteen bytes12345678>")
    }

    func testNothingWrittenMovesNothing() {
        XCTAssertEqual(written(bound: 0) { _ in }, "<>")
    }

    func testGeneratedRequestIDText() {
        // Version 4 and the RFC 4122 variant whatever the random bits; bytes low first.
        XCTAssertEqual(GeneratedRequestID(random: .max, .max).text, "ffffffff-ffff-4fff-bfff-ffffffffffff")
        XCTAssertEqual(GeneratedRequestID(random: 0, 0).text, "00000000-0000-4000-8000-000000000000")
        XCTAssertEqual(GeneratedRequestID(random: 0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908).text, "00010203-0405-4607-8809-0a0b0c0d0e0f")
        // Against a digit-at-a-time reference, for random words.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let id = GeneratedRequestID(random: generator.next(), generator.next())
            var reference = ""
            for i in 0..<16 {
                let byte = UInt8(truncatingIfNeeded: (i < 8 ? id.high : id.low) >> (UInt64(i % 8) * 8))
                if [4, 6, 8, 10].contains(i) { reference += "-" }
                reference += String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
            }
            XCTAssertEqual(id.text, reference)
        }
        var record = AccessLogRecord()
        record.requestID = .generated(GeneratedRequestID(random: 0, 0))
        XCTAssertEqual(record.requestId, "00000000-0000-4000-8000-000000000000")
        XCTAssertTrue(record.line(format: .json).contains(#""request_id":"00000000-0000-4000-8000-000000000000""#))
        XCTAssertTrue(record.line(format: .text).contains(#" "00000000-0000-4000-8000-000000000000" "#))
        record.requestId = "from-header"
        XCTAssertEqual(record.requestID, .text("from-header"))
    }
}
