import Dispatch
import XCTest

@testable import SluiceProxy

/// `makeRequestID().text`: lower-case RFC 4122 version-4 UUIDs from a per-thread generator.
final class RequestIDTests: XCTestCase {
    /// `8-4-4-4-12` lower-case hex digits with dashes, 36 bytes.
    private func assertShape(_ id: String, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(id.utf8)
        XCTAssertEqual(bytes.count, 36, id, file: file, line: line)
        for (i, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                XCTAssertEqual(byte, UInt8(ascii: "-"), "\(id) at \(i)", file: file, line: line)
            } else {
                let isLowerHex = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
                XCTAssertTrue(isLowerHex, "\(id) at \(i)", file: file, line: line)
            }
        }
    }

    func testFormatVersionAndVariant() {
        for _ in 0..<1000 {
            let id = makeRequestID().text
            assertShape(id)
            let bytes = Array(id.utf8)
            guard bytes.count == 36 else { return }
            // Version nibble: the first digit of the third group.
            XCTAssertEqual(bytes[14], UInt8(ascii: "4"), id)
            // Variant 10xx: the first digit of the fourth group is 8, 9, a or b.
            XCTAssertTrue([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(bytes[19]), id)
        }
    }

    func testUniqueOver100kIDs() {
        var seen = Set<String>()
        seen.reserveCapacity(100_000)
        for _ in 0..<100_000 {
            seen.insert(makeRequestID().text)
        }
        XCTAssertEqual(seen.count, 100_000)
    }

    /// Every thread gets its own, independently seeded generator: ids made on several threads
    /// at once are well formed and never repeat across threads.
    func testThreadsDoNotShareOrRepeatSequences() {
        let threads = 8
        let perThread = 10_000
        let results = UnsafeMutableBufferPointer<[String]>.allocate(capacity: threads)
        results.initialize(repeating: [])
        defer { results.deinitialize().deallocate() }
        let base = UncheckedSendable(results)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var ids: [String] = []
            ids.reserveCapacity(perThread)
            for _ in 0..<perThread { ids.append(makeRequestID().text) }
            base.value[t] = ids
        }
        let all = results.flatMap { $0 }
        XCTAssertEqual(all.count, threads * perThread)
        XCTAssertEqual(Set(all).count, all.count)
        for id in all.prefix(100) { assertShape(id) }
    }

    /// The generator itself: xoshiro256** from a known state gives the reference outputs
    /// (state 1, 2, 3, 4 → 11520, 0, 1509978240, 1215971899390074240).
    func testXoshiroReferenceOutputs() {
        let state = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
        defer { state.deallocate() }
        state.initialize(from: [1, 2, 3, 4], count: 4)
        XCTAssertEqual(RequestIDGenerator.next(state), 11520)
        XCTAssertEqual(RequestIDGenerator.next(state), 0)
        XCTAssertEqual(RequestIDGenerator.next(state), 1_509_978_240)
        XCTAssertEqual(RequestIDGenerator.next(state), 1_215_971_899_390_074_240)
    }
}

/// Lets the test hand each concurrent iteration its own slot of one buffer.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
