import SluiceCore
import XCTest

/// The forwarder's table of queries in flight on one upstream socket: random ids never
/// shared by two queries in flight, answers taken only with their query's id and question
/// (RFC 5452 sections 9.1 and 9.2), the query's own id put back.
final class DNSPendingQueriesTests: XCTestCase {
    /// A query (RD set) for `name` A with `id`, as dig sends it.
    private func query(_ name: String, id: UInt16, type: DNSRecordType = .a) throws -> [UInt8] {
        try DNSMessage(id: id, flags: 0x0100, questions: [DNSQuestion(name: name, type: type)]).serialized()
    }

    /// The resolver's answer to `query` as sent (its id), with one A record.
    private func answer(to sent: [UInt8]) throws -> [UInt8] {
        let parsed = try DNSMessage.parse(sent)
        let address = try XCTUnwrap(IPAddress("192.0.2.10"))
        return try parsed.response(rcode: .noError, answers: [DNSRecord(name: parsed.questions[0].name, ttl: 60, data: .address(address))]).serialized()
    }

    func testAnAnswerIsMatchedByIdAndQuestionAndGetsTheQuerysIdBack() throws {
        var table = DNSPendingQueries<String>()
        var random = SeededGenerator(seed: 1)
        var first = try query("api.example.com", id: 0xBEEF)
        var second = try query("www.example.com", id: 0xBEEF)  // two clients, the same id
        let firstID = try XCTUnwrap(table.add(&first, waiter: "first", using: &random))
        let secondID = try XCTUnwrap(table.add(&second, waiter: "second", using: &random))
        XCTAssertNotEqual(firstID, secondID)
        XCTAssertEqual(UInt16(first[0]) << 8 | UInt16(first[1]), firstID, "the id rewritten in place")
        XCTAssertEqual(Array(first[2...]), Array(try query("api.example.com", id: 0xBEEF)[2...]), "nothing else changed")
        XCTAssertEqual(table.count, 2)

        var reply = try answer(to: second)
        XCTAssertEqual(table.take(&reply), "second")
        XCTAssertEqual(UInt16(reply[0]) << 8 | UInt16(reply[1]), 0xBEEF)
        XCTAssertEqual(try DNSMessage.parse(reply).answers.count, 1)
        var again = try answer(to: second)
        XCTAssertNil(table.take(&again), "late: already answered")
        XCTAssertEqual(table.count, 1)
    }

    func testSpoofedAnswersAreNotTaken() throws {
        var table = DNSPendingQueries<Int>()
        var random = SeededGenerator(seed: 7)
        var sent = try query("api.example.com", id: 1)
        let id = try XCTUnwrap(table.add(&sent, waiter: 1, using: &random))
        // A guessed id off by one; the right id with another name, another case (0x20), another
        // type; the query itself reflected (QR clear); a truncated header.
        var wrongID = try answer(to: sent)
        wrongID[1] ^= 1
        let otherName = try answer(to: try query("evil.example.com", id: id))
        var otherCase = try answer(to: sent)
        otherCase[13] = UInt8(ascii: "A")  // "\u{3}api" -> "\u{3}Api"
        let otherType = try answer(to: try query("api.example.com", id: id, type: .aaaa))
        let short = Array(try answer(to: sent).prefix(11))
        for (label, bytes) in [("id", wrongID), ("name", otherName), ("case", otherCase), ("type", otherType), ("not an answer", sent), ("short", short)] {
            var copy = bytes
            XCTAssertNil(table.take(&copy), label)
            XCTAssertEqual(copy, bytes, "\(label): left as it was")
        }
        var real = try answer(to: sent)
        XCTAssertEqual(table.take(&real), 1, "the real answer still matches after the spoofed ones")
    }

    func testIdsInFlightAreNeverReusedAndATimedOutQueryIsForgotten() throws {
        var table = DNSPendingQueries<Int>(capacity: 300)
        var random = SeededGenerator(seed: 3)
        var ids = Set<UInt16>()
        for index in 0..<300 {
            var bytes = try query("n\(index).example.com", id: 0)
            ids.insert(try XCTUnwrap(table.add(&bytes, waiter: index, using: &random)))
        }
        XCTAssertEqual(ids.count, 300)
        var refused = try query("more.example.com", id: 0)
        XCTAssertNil(table.add(&refused, waiter: 300, using: &random), "full")
        let some = try XCTUnwrap(ids.first)
        XCTAssertNotNil(table.remove(id: some))
        XCTAssertNil(table.remove(id: some))
        XCTAssertEqual(table.count, 299)
        XCTAssertEqual(table.removeAll().count, 299)
        XCTAssertEqual(table.count, 0)
    }

    func testAnIdCollisionIsRedrawn() throws {
        // Two tables from the same seed draw the same first id; the second query in one table
        // must not get the first's id even when the generator repeats it.
        struct Repeating: RandomNumberGenerator {
            var values: [UInt64]
            mutating func next() -> UInt64 { values.count > 1 ? values.removeFirst() : values[0] }
        }
        var table = DNSPendingQueries<Int>()
        var random = Repeating(values: [5, 5, 5, 9])
        var a = try query("a.example.com", id: 0)
        var b = try query("b.example.com", id: 0)
        let first = try XCTUnwrap(table.add(&a, waiter: 0, using: &random))
        let second = try XCTUnwrap(table.add(&b, waiter: 1, using: &random))
        XCTAssertNotEqual(first, second)
    }
}
