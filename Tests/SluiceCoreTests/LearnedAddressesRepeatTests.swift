import SluiceCore
import XCTest

/// The learned-address table skips an answer learned again within the same second when nothing
/// changed since (the DNS proxy learns every cache hit): the skip must never change what the
/// table holds compared with learning every time.
final class LearnedAddressesRepeatTests: XCTestCase {
    /// A response for `name` A with `address`, TTL `ttl` (RFC 1035 4.1, as the proxy's cache holds it).
    private func answer(_ name: String, _ address: String, ttl: UInt32 = 60) throws -> DNSLearnable {
        let query = DNSMessage(id: 1, flags: 0x0100, questions: [DNSQuestion(name: name, type: .a)])
        let ip = try XCTUnwrap(IPAddress(address))
        return DNSLearnable(query.response(rcode: .noError, answers: [DNSRecord(name: name, ttl: ttl, data: .address(ip))]))
    }

    func testAnotherNameForTheSameAddressInBetweenIsNotMaskedByTheRepeat() throws {
        // A CDN address two names resolve to: the table says the name resolved last.
        var table = LearnedAddresses()
        let shared = try XCTUnwrap(IPAddress("192.0.2.50"))
        let first = try answer("a.example", "192.0.2.50")
        table.learn(first, cappedAt: 60, now: 100)
        table.learn(try answer("b.example", "192.0.2.50"), cappedAt: 60, now: 100)
        XCTAssertEqual(table.hostname(for: shared, now: 100), "b.example")
        table.learn(first, cappedAt: 60, now: 100)
        XCTAssertEqual(table.hostname(for: shared, now: 100), "a.example", "the same answer again, after a change, is learned")
    }

    func testTheRepeatInALaterSecondExtendsTheEntry() throws {
        var table = LearnedAddresses(minimumTTL: 0, maximumTTL: 3600)
        let address = try XCTUnwrap(IPAddress("192.0.2.51"))
        let hit = try answer("c.example", "192.0.2.51", ttl: 10)
        table.learn(hit, cappedAt: 10, now: 100)
        table.learn(hit, cappedAt: 10, now: 100)
        XCTAssertNil(table.hostname(for: address, now: 110))
        table.learn(hit, cappedAt: 10, now: 105)
        XCTAssertEqual(table.hostname(for: address, now: 114), "c.example", "learned again at 105: valid to 115")
        XCTAssertNil(table.hostname(for: address, now: 115))
    }

    func testALowerCapOrNewBoundsAreNotARepeat() throws {
        var table = LearnedAddresses(minimumTTL: 0, maximumTTL: 3600)
        let address = try XCTUnwrap(IPAddress("192.0.2.52"))
        let hit = try answer("d.example", "192.0.2.52", ttl: 300)
        table.learn(hit, cappedAt: 300, now: 100)
        table.learn(hit, cappedAt: 20, now: 100)
        XCTAssertNil(table.hostname(for: address, now: 120), "the cached answer had 20 s left: learned with that")
        table.learn(hit, cappedAt: 20, now: 100)
        table.setTTLBounds(DNSConfig(learnedTTLFloor: 40, learnedTTLCap: 3600))
        table.learn(hit, cappedAt: 20, now: 100)
        XCTAssertEqual(table.hostname(for: address, now: 139), "d.example", "the new 40 s floor applies")
    }
}
