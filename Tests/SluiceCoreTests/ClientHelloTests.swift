import Foundation
import NIOCore
import SluiceCore
import XCTest

/// The SNI parser against real ClientHellos (captured on loopback from curl, openssl s_client and
/// python's ssl module) and against hand-built hostile ones.
final class ClientHelloTests: XCTestCase {
    /// Fixture name → the SNI it carries.
    private static let fixtures: [(name: String, serverName: String?)] = [
        ("curl", "aliyun.com"),
        ("openssl-tls12", "aliyun.com"),
        ("openssl-tls13", "aliyun.com"),
        ("python-ssl", "aliyun.com"),
        ("openssl-nosni", nil),
    ]

    private func fixture(_ name: String) throws -> [UInt8] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures/clienthello"),
            "missing fixture \(name).bin"
        )
        return try [UInt8](Data(contentsOf: url))
    }

    // MARK: Real clients

    func testRealClientHellosWhole() throws {
        for (name, serverName) in Self.fixtures {
            let bytes = try fixture(name)
            XCTAssertEqual(ClientHelloParser.parse(bytes), .clientHello(serverName: serverName), name)
            XCTAssertEqual(ClientHelloParser.parse(ByteBuffer(bytes: bytes)), .clientHello(serverName: serverName), name)
        }
    }

    func testEveryPrefixOfRealClientHelloIsIncomplete() throws {
        for (name, _) in Self.fixtures {
            let bytes = try fixture(name)
            for length in 0..<bytes.count {
                XCTAssertEqual(ClientHelloParser.parse(bytes[0..<length]), .incomplete, "\(name) prefix \(length)")
            }
        }
    }

    func testEveryPrefixThroughByteBufferIsIncomplete() throws {
        let bytes = try fixture("curl")
        var buffer = ByteBuffer()
        for byte in bytes.dropLast() {
            buffer.writeInteger(byte)
            XCTAssertEqual(ClientHelloParser.parse(buffer), .incomplete, "prefix \(buffer.readableBytes)")
        }
        buffer.writeInteger(bytes[bytes.count - 1])
        XCTAssertEqual(ClientHelloParser.parse(buffer), .clientHello(serverName: "aliyun.com"))
    }

    func testParsesFromReaderIndexWithoutConsuming() throws {
        let bytes = try fixture("openssl-tls13")
        var buffer = ByteBuffer(bytes: [0xDE, 0xAD] + bytes)
        buffer.moveReaderIndex(forwardBy: 2)
        XCTAssertEqual(ClientHelloParser.parse(buffer), .clientHello(serverName: "aliyun.com"))
        XCTAssertEqual(buffer.readerIndex, 2)
        XCTAssertEqual(buffer.readableBytes, bytes.count)
    }

    func testBytesAfterTheClientHelloAreIgnored() throws {
        // A TLS 1.3 client may follow its hello with ChangeCipherSpec or early data at once.
        let bytes = try fixture("openssl-tls13") + [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
        XCTAssertEqual(ClientHelloParser.parse(bytes), .clientHello(serverName: "aliyun.com"))
    }

    func testNonContiguousCollection() throws {
        let bytes = try fixture("python-ssl")
        let chunks = stride(from: 0, to: bytes.count, by: 100).map { Array(bytes[$0..<min($0 + 100, bytes.count)]) }
        XCTAssertEqual(ClientHelloParser.parse(chunks.joined()), .clientHello(serverName: "aliyun.com"))
    }

    // MARK: Fragmented over several records

    func testRealClientHellosSplitAcrossRecords() throws {
        for (name, serverName) in Self.fixtures {
            let bytes = try fixture(name)
            for size in [1, 2, 3, 4, 5, 7, 64, 100, 511] {
                let split = try Self.refragment(bytes, recordSize: size)
                XCTAssertEqual(ClientHelloParser.parse(split), .clientHello(serverName: serverName), "\(name) / \(size)")
            }
        }
    }

    func testEveryPrefixOfFragmentedClientHelloIsIncomplete() throws {
        let bytes = try fixture("openssl-tls13")
        for size in [1, 3, 50] {
            let split = try Self.refragment(bytes, recordSize: size)
            for length in 0..<split.count {
                XCTAssertEqual(ClientHelloParser.parse(split[0..<length]), .incomplete, "size \(size) prefix \(length)")
            }
            XCTAssertEqual(ClientHelloParser.parse(split), .clientHello(serverName: "aliyun.com"))
        }
    }

    func testFragmentedFollowedByOtherRecordIsComplete() throws {
        let split = try Self.refragment(try fixture("curl"), recordSize: 200) + [0x17, 0x03, 0x03, 0x00, 0x01, 0x00]
        XCTAssertEqual(ClientHelloParser.parse(split), .clientHello(serverName: "aliyun.com"))
    }

    func testNonHandshakeRecordInsideFragmentedHelloIsMalformed() throws {
        let split = try Self.refragment(try fixture("curl"), recordSize: 200)
        // Put an application_data record between the first and second fragments.
        let firstRecordEnd = 5 + 200
        let hostile = Array(split[0..<firstRecordEnd]) + [0x17, 0x03, 0x03, 0x00, 0x01, 0x00] + split[firstRecordEnd...]
        XCTAssertMalformed(ClientHelloParser.parse(hostile))
        // ... and already when only its first byte has arrived.
        XCTAssertMalformed(ClientHelloParser.parse(hostile[0...firstRecordEnd]))
    }

    // MARK: Not TLS

    func testEmptyIsIncomplete() {
        XCTAssertEqual(ClientHelloParser.parse([UInt8]()), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse(ByteBuffer()), .incomplete)
    }

    func testHTTPIsNotTLS() {
        for request in ["GET / HTTP/1.1\r\nHost: aliyun.com\r\n\r\n", "CONNECT aliyun.com:443 HTTP/1.1\r\n", "G"] {
            XCTAssertEqual(ClientHelloParser.parse(Array(request.utf8)), .notTLS, request)
        }
    }

    func testSSLv2HelloIsNotTLS() {
        // SSLv2-compatible hello: 2-byte length with the high bit set, msg_type 1, version 3.1.
        let sslv2: [UInt8] = [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]
        XCTAssertEqual(ClientHelloParser.parse(sslv2), .notTLS)
        XCTAssertEqual(ClientHelloParser.parse([0x80]), .notTLS)
    }

    func testOtherRecordHeadersAreNotTLS() {
        XCTAssertEqual(ClientHelloParser.parse([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]), .notTLS)  // alert
        XCTAssertEqual(ClientHelloParser.parse([0x16, 0x02]), .notTLS)  // not version 3.x
        XCTAssertEqual(ClientHelloParser.parse([0x16, 0x03, 0x09]), .notTLS)  // no such 3.x
        XCTAssertEqual(ClientHelloParser.parse([0x16]), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse([0x16, 0x03]), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse([0x16, 0x03, 0x00]), .incomplete)  // SSL 3.0 record version
    }

    // MARK: Built hellos

    func testBuiltHelloParses() {
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(serverName: "example.test")), .clientHello(serverName: "example.test"))
    }

    func testNameIsLowercasedAndTrailingDotStripped() {
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(serverName: "AliYun.COM.")), .clientHello(serverName: "aliyun.com"))
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(serverName: "a_b-1.Test")), .clientHello(serverName: "a_b-1.test"))
    }

    func testTLS12HelloWithoutExtensionsBlockHasNoName() {
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(extensions: nil)), .clientHello(serverName: nil))
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(extensions: [])), .clientHello(serverName: nil))
    }

    func testNonHostNameTypeIsSkipped() {
        let list = Self.serverNameList([(1, Array("aliyun.com".utf8))])
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(extensions: [(0, list)])), .clientHello(serverName: nil))
        let mixed = Self.serverNameList([(7, [1, 2, 3]), (0, Array("b.test".utf8))])
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(extensions: [(0, mixed)])), .clientHello(serverName: "b.test"))
    }

    func testLongestNameIsAccepted() {
        let name = String(repeating: "a", count: 255)
        XCTAssertEqual(ClientHelloParser.parse(Self.hello(serverName: name)), .clientHello(serverName: name))
    }

    // MARK: Malformed

    func testHostileNameBytesAreMalformed() {
        for name in ["aliyun\0.com", "aliyun.com\r\n", "aliyun.com\n", "aliyun com", "alíyun.com", "a/b", "a:443", "a\u{7F}"] {
            XCTAssertMalformed(ClientHelloParser.parse(Self.hello(serverName: name)), name.debugDescription)
        }
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(nameBytes: [0x61, 0x00])))
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(nameBytes: [0xC3, 0xA9])))
    }

    func testEmptyOrDotOnlyNameIsMalformed() {
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(serverName: "")))
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(serverName: ".")))
    }

    func testNameLongerThan255IsMalformed() {
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(serverName: String(repeating: "a", count: 256))))
    }

    func testNulInRealFixtureNameIsMalformed() throws {
        var bytes = try fixture("curl")
        let index = try XCTUnwrap(Self.firstIndex(of: Array("aliyun".utf8), in: bytes))
        bytes[index + 3] = 0x00
        XCTAssertMalformed(ClientHelloParser.parse(bytes))
    }

    func testDuplicateServerNameIsMalformed() {
        let sni = Self.serverNameList([(0, Array("a.test".utf8))])
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, sni), (0, sni)])))
        let twoNames = Self.serverNameList([(0, Array("a.test".utf8)), (0, Array("b.test".utf8))])
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, twoNames)])))
    }

    func testBadServerNameExtensionLengthsAreMalformed() {
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [])])))  // no list
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [0x00, 0x00])])))  // empty list
        // List length larger than the extension.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [0x00, 0x09, 0x00, 0x00, 0x01, 0x61])])))
        // List length smaller than the extension: trailing bytes.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [0x00, 0x04, 0x00, 0x00, 0x01, 0x61, 0xFF])])))
        // Name length larger than the list.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [0x00, 0x04, 0x00, 0x00, 0x05, 0x61])])))
        // Name type without a length.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(extensions: [(0, [0x00, 0x01, 0x00])])))
    }

    func testTruncatedExtensionIsMalformed() {
        // The extension claims 10 bytes of data, only 2 remain in the block.
        var hello = Self.helloBody(extensions: [(0x000A, [0x00, 0x02])])
        // extensions block: [len16][type16][len16][data] — bump the extension's own length.
        let extensionLengthOffset = hello.count - 4
        hello[extensionLengthOffset] = 0x00
        hello[extensionLengthOffset + 1] = 0x0A
        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(hello))))
        // A lone extension type with no length.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(rawExtensionsBlock: [0x00, 0x02, 0x00, 0x00])))
        // One stray byte in the block.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(rawExtensionsBlock: [0x00, 0x01, 0x00])))
    }

    func testBadBodyLengthsAreMalformed() {
        let good = Self.helloBody(extensions: nil)
        // Offsets in the body: version 0, random 2, session id length 34.
        var sessionTooLong = good
        sessionTooLong[34] = 33
        sessionTooLong += [UInt8](repeating: 0, count: 33)
        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(sessionTooLong))))

        var sessionPastEnd = good
        sessionPastEnd[34] = 200
        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(sessionPastEnd))))

        // cipher_suites length (at 35..36 with an empty session id) odd, zero, past the end.
        for suitesLength: UInt16 in [3, 0, 0x4000] {
            var body = good
            body[35] = UInt8(suitesLength >> 8)
            body[36] = UInt8(suitesLength & 0xFF)
            XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(body))), "\(suitesLength)")
        }

        var noCompression = good
        noCompression[39] = 0  // compression methods length (after 2 bytes of one suite)
        noCompression.remove(at: 40)
        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(noCompression))))

        var wrongVersion = good
        wrongVersion[0] = 0x02
        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(wrongVersion))))

        XCTAssertMalformed(ClientHelloParser.parse(Self.record(Self.handshake(Array(good[0..<20])))))
        // Extensions block length disagreeing with what is left in the message.
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(rawExtensionsBlock: [0x00, 0x05, 0x00, 0x01, 0x00, 0x00])))
        XCTAssertMalformed(ClientHelloParser.parse(Self.hello(rawExtensionsBlock: [0x00, 0x00, 0xAA])))
    }

    func testBadRecordLengthsAreMalformed() throws {
        var bytes = try fixture("openssl-tls12")
        bytes[3] = 0x00
        bytes[4] = 0x00
        XCTAssertMalformed(ClientHelloParser.parse(bytes))  // empty handshake record

        XCTAssertMalformed(ClientHelloParser.parse([0x16, 0x03, 0x01, 0x40, 0x01]))  // 2^14 + 1
    }

    func testNotAClientHelloIsMalformed() throws {
        var bytes = try fixture("openssl-tls12")
        bytes[5] = 0x02  // server_hello
        XCTAssertMalformed(ClientHelloParser.parse(bytes))
        // Known from the first handshake byte, without waiting for the rest.
        XCTAssertMalformed(ClientHelloParser.parse(bytes[0..<6]))
    }

    func testHandshakeLongerThanItsRecordsWaitsForMore() throws {
        // A record that ends before the message and no next record yet: a prefix, not an error.
        let body = Self.helloBody(extensions: nil)
        let message = Self.handshake(body)
        XCTAssertEqual(ClientHelloParser.parse(Self.record(Array(message[0..<10]))), .incomplete)
    }

    // MARK: Size cap

    func testOversizedHelloIsRejectedFromItsHeader() {
        // Handshake header announcing 20,000 bytes, right after the record header.
        let bytes: [UInt8] = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x4E, 0x20]
        XCTAssertEqual(ClientHelloParser.parse(bytes), .malformed("ClientHello too large"))
        let maximal: [UInt8] = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xFF, 0xFF, 0xFF]
        XCTAssertEqual(ClientHelloParser.parse(maximal), .malformed("ClientHello too large"))
    }

    func testHelloFillingTheCapIsAcceptedAndOneMoreByteIsNot() throws {
        // One record of exactly 2^14 bytes: header + body fits the cap exactly.
        let padding = ClientHelloParser.maxClientHelloBytes - Self.hello(serverName: "a.test", padding: 0).count
        let fits = Self.hello(serverName: "a.test", padding: padding)
        XCTAssertEqual(fits.count, ClientHelloParser.maxClientHelloBytes)
        XCTAssertEqual(ClientHelloParser.parse(fits), .clientHello(serverName: "a.test"))
        // The same message split in two records no longer fits: 5 more header bytes.
        let split = try Self.refragment(fits, recordSize: 8000)
        XCTAssertEqual(ClientHelloParser.parse(split), .malformed("ClientHello too large"))
        // Known as soon as the first record is complete: the rest needs another header.
        XCTAssertEqual(ClientHelloParser.parse(split[0..<(5 + 8000 - 1)]), .incomplete)
        XCTAssertEqual(ClientHelloParser.parse(split[0..<(5 + 8000)]), .malformed("ClientHello too large"))
    }

    func testManyTinyRecordsHitTheCap() throws {
        let hello = Self.hello(serverName: "a.test", padding: 4000)
        let split = try Self.refragment(hello, recordSize: 1)  // ~6 bytes on the wire per handshake byte
        XCTAssertEqual(ClientHelloParser.parse(split), .malformed("ClientHello too large"))
    }

    // MARK: Never crash

    func testRandomMutationsNeverTrap() throws {
        var rng = SplitMix64(seed: 0x5EED)
        let seeds = try Self.fixtures.map { try fixture($0.name) } + [Self.hello(serverName: "x.test")]
        var results = [String: Int]()
        for _ in 0..<20_000 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + rng.next() % 4) {
                let index = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[index] ^= 0xFF
                case 2: bytes.removeSubrange(index..<min(bytes.count, index + Int(rng.next() % 8) + 1))
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: index)
                }
                if bytes.isEmpty { bytes = [0x16] }
            }
            let result = ClientHelloParser.parse(bytes)
            results[Self.kind(result), default: 0] += 1
        }
        for _ in 0..<5_000 {
            let length = Int(rng.next() % 300)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if rng.next() % 2 == 0, bytes.count >= 3 { bytes[0] = 0x16; bytes[1] = 0x03; bytes[2] = 0x01 }
            results[Self.kind(ClientHelloParser.parse(bytes)), default: 0] += 1
        }
        // Every outcome shows up: the mutations exercised each path.
        XCTAssertEqual(Set(results.keys), ["incomplete", "notTLS", "malformed", "clientHello"])
    }

    // MARK: - Helpers

    private static func kind(_ result: ClientHelloParseResult) -> String {
        switch result {
        case .incomplete: "incomplete"
        case .notTLS: "notTLS"
        case .malformed: "malformed"
        case .clientHello: "clientHello"
        }
    }

    /// Re-splits the handshake bytes of `records` (a run of handshake records) into records
    /// carrying at most `recordSize` bytes each.
    static func refragment(_ records: [UInt8], recordSize: Int) throws -> [UInt8] {
        var payload: [UInt8] = []
        var offset = 0
        while offset < records.count {
            guard records.count - offset >= 5, records[offset] == 0x16 else { throw FixtureError.notHandshakeRecords }
            let length = Int(records[offset + 3]) << 8 | Int(records[offset + 4])
            guard offset + 5 + length <= records.count else { throw FixtureError.notHandshakeRecords }
            payload += records[(offset + 5)..<(offset + 5 + length)]
            offset += 5 + length
        }
        var out: [UInt8] = []
        var start = 0
        while start < payload.count {
            let end = min(start + recordSize, payload.count)
            out += record(Array(payload[start..<end]), version: (records[1], records[2]))
            start = end
        }
        return out
    }

    enum FixtureError: Error { case notHandshakeRecords }

    static func record(_ payload: [UInt8], version: (UInt8, UInt8) = (0x03, 0x01)) -> [UInt8] {
        [0x16, version.0, version.1, UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)] + payload
    }

    static func handshake(_ body: [UInt8]) -> [UInt8] {
        [0x01, UInt8(body.count >> 16 & 0xFF), UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)] + body
    }

    static func vector16(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8(bytes.count >> 8 & 0xFF), UInt8(bytes.count & 0xFF)] + bytes
    }

    static func serverNameList(_ names: [(type: UInt8, name: [UInt8])]) -> [UInt8] {
        vector16(names.flatMap { [$0.type] + vector16($0.name) })
    }

    /// A TLS 1.2-shaped ClientHello body: empty session id, one suite, null compression.
    static func helloBody(extensions: [(type: UInt16, data: [UInt8])]?, rawExtensionsBlock: [UInt8]? = nil) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xAB, count: 32)
        body += [0x00]  // legacy_session_id
        body += [0x00, 0x02, 0xC0, 0x2F]  // cipher_suites
        body += [0x01, 0x00]  // legacy_compression_methods
        if let rawExtensionsBlock {
            body += rawExtensionsBlock
        } else if let extensions {
            body += vector16(extensions.flatMap { [UInt8($0.type >> 8), UInt8($0.type & 0xFF)] + vector16($0.data) })
        }
        return body
    }

    static func hello(extensions: [(type: UInt16, data: [UInt8])]?) -> [UInt8] {
        record(handshake(helloBody(extensions: extensions)))
    }

    static func hello(rawExtensionsBlock: [UInt8]) -> [UInt8] {
        record(handshake(helloBody(extensions: nil, rawExtensionsBlock: rawExtensionsBlock)))
    }

    static func hello(nameBytes: [UInt8]) -> [UInt8] {
        hello(extensions: [(0x0000, serverNameList([(0, nameBytes)]))])
    }

    /// A hello with an SNI plus a padding extension (RFC 7685, type 21) of `padding` bytes
    /// in total (extension header included), to reach exact sizes.
    static func hello(serverName: String, padding: Int = 0) -> [UInt8] {
        var extensions: [(type: UInt16, data: [UInt8])] = [(0x0000, serverNameList([(0, Array(serverName.utf8))]))]
        if padding >= 4 { extensions.append((21, [UInt8](repeating: 0, count: padding - 4))) }
        return hello(extensions: extensions)
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}

/// Deterministic generator so a failing mutation reproduces.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func XCTAssertMalformed(
    _ result: ClientHelloParseResult,
    _ message: String = "",
    file: StaticString = #filePath,
    line: UInt = #line
) {
    guard case .malformed = result else {
        XCTFail("expected .malformed, got \(result) \(message)", file: file, line: line)
        return
    }
}
