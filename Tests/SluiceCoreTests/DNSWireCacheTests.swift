import NIOCore
import SluiceCore
import XCTest

/// The answer cache's raw path (the DNS proxy's cache hit) against its message path: for every
/// query it takes, the bytes must be exactly what `response(to:now:)` serializes to.
final class DNSWireCacheTests: XCTestCase {
    private func address(_ text: String) throws -> IPAddress { try XCTUnwrap(IPAddress(text)) }

    /// The cache after one upstream answer: `www.example.com` CNAME `edge.example.net`, two A
    /// records (a chain as dig shows for a CDN-fronted name).
    private func cache() throws -> DNSAnswerCache {
        var cache = DNSAnswerCache(maximumTTL: 300)
        let query = DNSMessage(id: 1, flags: 0x0100, questions: [DNSQuestion(name: "www.example.com", type: .a)])
        cache.store(query.response(rcode: .noError, answers: [
            DNSRecord(name: "www.example.com", ttl: 120, data: .canonicalName("edge.example.net")),
            DNSRecord(name: "edge.example.net", ttl: 20, data: .address(try address("192.0.2.10"))),
            DNSRecord(name: "edge.example.net", ttl: 600, data: .address(try address("192.0.2.11"))),
        ]), now: 1000)
        let missing = DNSMessage(id: 2, flags: 0x0100, questions: [DNSQuestion(name: "gone.example.com", type: .aaaa)])
        cache.store(missing.response(rcode: .nameError), now: 1000)
        return cache
    }

    private func raw(_ message: DNSMessage, extra: [UInt8] = []) throws -> ByteBuffer {
        var bytes = try message.serialized()
        if !extra.isEmpty {
            bytes[11] = 1  // ARCOUNT
            bytes += extra
        }
        return ByteBuffer(bytes: bytes)
    }

    func testAHitIsByteForByteTheMessagePathsAnswer() throws {
        let cache = try cache()
        // Mixed case, RD clear, then set; ids differ; EDNS OPT in the additional section.
        let opt: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        for (name, flags, extra) in [("www.example.com", UInt16(0x0100), [UInt8]()), ("WWW.Example.COM", 0x0000, opt)] {
            let query = DNSMessage(id: 0xBEEF, flags: flags, questions: [DNSQuestion(name: name, type: .a)])
            for now in [UInt64(1000), 1005, 1019] {
                let wire = try XCTUnwrap(cache.wireResponse(to: try raw(query, extra: extra), now: now, allocator: ByteBufferAllocator()))
                let parsed = try DNSMessage.parse(try raw(query).readableBytesView)
                let expected = try XCTUnwrap(cache.response(to: parsed, now: now)).serialized()
                XCTAssertEqual(Array(wire.bytes.readableBytesView), expected, "\(name) at \(now)")
                XCTAssertEqual(wire.learnable.hostname, "www.example.com")
                XCTAssertEqual(wire.learnable.addresses.map { $0.address }, [try address("192.0.2.10"), try address("192.0.2.11")])
            }
        }
        let nx = DNSMessage(id: 9, flags: 0x0100, questions: [DNSQuestion(name: "gone.example.com", type: .aaaa)])
        let wire = try XCTUnwrap(cache.wireResponse(to: try raw(nx), now: 1010, allocator: ByteBufferAllocator()))
        XCTAssertEqual(Array(wire.bytes.readableBytesView), try XCTUnwrap(cache.response(to: nx, now: 1010)).serialized())
    }

    func testMissesAndQueriesItDoesNotTakeGoTheFullPath() throws {
        let cache = try cache()
        let allocator = ByteBufferAllocator()
        func wire(_ message: DNSMessage, now: UInt64 = 1010) throws -> DNSWireAnswer? {
            cache.wireResponse(to: try raw(message), now: now, allocator: allocator)
        }
        let query = DNSMessage(id: 3, flags: 0x0100, questions: [DNSQuestion(name: "www.example.com", type: .a)])
        XCTAssertNil(try wire(query, now: 1300), "expired (the smallest TTL, 20 s, from 1000)")
        XCTAssertNil(try wire(DNSMessage(id: 3, flags: 0x0100, questions: [DNSQuestion(name: "www.example.com", type: .aaaa)])), "another type")
        XCTAssertNil(try wire(DNSMessage(id: 3, flags: 0x0100, questions: [DNSQuestion(name: "www.example.com", type: .a, class: 3)])), "another class")
        XCTAssertNil(try wire(DNSMessage(id: 3, flags: 0x8100, questions: query.questions)), "a response")
        XCTAssertNil(try wire(DNSMessage(id: 3, flags: 0x2100, questions: query.questions)), "opcode 4")
        XCTAssertNil(try wire(DNSMessage(id: 3, flags: 0x0100, questions: query.questions + query.questions)), "two questions")
        // A compressed question name (a pointer back into the header) and every truncation.
        var pointer = try raw(query)
        pointer.setBytes([0xC0, 0x0C], at: 12)
        XCTAssertNil(cache.wireResponse(to: pointer, now: 1010, allocator: allocator))
        let whole = try query.serialized()
        for length in 0..<whole.count {
            XCTAssertNil(cache.wireResponse(to: ByteBuffer(bytes: whole.prefix(length)), now: 1010, allocator: allocator), "\(length) bytes")
        }
    }

    /// The hit thread's in-place path writes exactly the bytes of the ByteBuffer path, and
    /// refuses a slot too small for the answer (the responder's path takes it then).
    func testAHitWrittenInPlaceIsTheSameBytes() throws {
        let cache = try cache()
        let query = DNSMessage(id: 0x1234, flags: 0x0100, questions: [DNSQuestion(name: "Www.Example.com", type: .a)])
        let raw = try query.serialized()
        let expected = Array(try XCTUnwrap(cache.wireResponse(to: ByteBuffer(bytes: raw), now: 1007, allocator: ByteBufferAllocator())).bytes.readableBytesView)
        let slot = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { slot.deallocate() }
        let hit = try XCTUnwrap(raw.withUnsafeBytes { cache.writeResponse(to: $0, into: slot, now: 1007) })
        XCTAssertEqual(Array(slot.prefix(hit.length)), expected)
        XCTAssertEqual(hit.secondsLeft, 13)
        XCTAssertEqual(hit.learnable.hostname, "www.example.com")
        let small = UnsafeMutableRawBufferPointer(rebasing: slot.prefix(expected.count - 1))
        XCTAssertNil(raw.withUnsafeBytes { cache.writeResponse(to: $0, into: small, now: 1007) })
        XCTAssertNil(raw.withUnsafeBytes { cache.writeResponse(to: $0, into: slot, now: 1020) }, "expired")
    }
}
