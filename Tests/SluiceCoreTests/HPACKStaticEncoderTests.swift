import NIOCore
import SluiceCore
import XCTest

/// The static-table encoder against RFC 7541 Appendix C's encodings that use no dynamic
/// table and no Huffman coding.
final class HPACKStaticEncoderTests: XCTestCase {
    private func encode(_ fields: [(String, String)]) -> [UInt8] {
        var block = ByteBuffer()
        for (name, value) in fields { HPACKStaticEncoder.append(name: name, value: value, to: &block) }
        return Array(block.readableBytesView)
    }

    func testAppendixC2_2LiteralWithoutIndexing() {
        // C.2.2: `:path: /sample/path`, literal without indexing, indexed name 4.
        XCTAssertEqual(encode([(":path", "/sample/path")]),
                       [0x04, 0x0c, 0x2f, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x70, 0x61, 0x74, 0x68])
    }

    func testAppendixC2_4IndexedField() {
        // C.2.4: `:method: GET` is static entry 2.
        XCTAssertEqual(encode([(":method", "GET")]), [0x82])
    }

    func testAppendixC3_1RequestWithoutIndexing() {
        // C.3.1's request; where C.3.1 adds `:authority` to the dynamic table (0x41) we send it
        // as a literal without indexing (0x01), the rest is the same bytes.
        XCTAssertEqual(encode([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]),
                       [0x82, 0x86, 0x84, 0x01, 0x0f] + Array("www.example.com".utf8))
    }

    func testLiteralNameAndLongValues() {
        // C.2.2's literal-name form (0x00, name, value), here without indexing.
        XCTAssertEqual(encode([("custom-key", "custom-header")]),
                       [0x00, 0x0a] + Array("custom-key".utf8) + [0x0d] + Array("custom-header".utf8))
        // A 200-byte value: its length needs a continuation byte (C.1.2's integer form: 127, 73).
        let long = String(repeating: "a", count: 200)
        XCTAssertEqual(Array(encode([("x-long", long)]).prefix(10)), [0x00, 0x06] + Array("x-long".utf8) + [0x7f, 0x49])
        // A name whose static index needs more than 4 bits: `www-authenticate` is 61 (15, 46).
        XCTAssertEqual(Array(encode([("www-authenticate", "x")])), [0x0f, 0x2e, 0x01, 0x78])
        // Values other than the static one use the name's first index: `:status 201` is name 8.
        XCTAssertEqual(encode([(":status", "200"), (":status", "201")]), [0x88, 0x08, 0x03, 0x32, 0x30, 0x31])
    }
}
