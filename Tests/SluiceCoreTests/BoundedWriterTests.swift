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
}
