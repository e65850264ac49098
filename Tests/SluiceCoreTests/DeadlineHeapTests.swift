import SluiceCore
import XCTest

final class DeadlineHeapTests: XCTestCase {
    func testPopsInDeadlineOrderOnlyOnceDue() {
        var heap = DeadlineHeap()
        let late = heap.insert(30)
        let early = heap.insert(10)
        let middle = heap.insert(20)
        XCTAssertEqual(heap.earliest, 10)
        XCTAssertNil(heap.popExpired(now: 9), "nothing is due before its deadline")
        XCTAssertEqual(heap.popExpired(now: 25), early.slot)
        XCTAssertEqual(heap.popExpired(now: 25), middle.slot)
        XCTAssertNil(heap.popExpired(now: 25))
        XCTAssertEqual(heap.popExpired(now: 30), late.slot, "due at its deadline exactly")
        XCTAssertEqual(heap.count, 0)
        XCTAssertNil(heap.earliest)
    }

    func testCancelRemovesOnlyItsOwnDeadline() {
        var heap = DeadlineHeap()
        let a = heap.insert(10)
        let b = heap.insert(20)
        XCTAssertTrue(heap.cancel(a))
        XCTAssertFalse(heap.cancel(a), "a second cancel finds nothing")
        XCTAssertEqual(heap.earliest, 20)
        XCTAssertTrue(heap.isPending(b))
        XCTAssertEqual(heap.popExpired(now: 100), b.slot)
    }

    func testAStaleHandleDoesNotCancelTheSlotsNextDeadline() {
        var heap = DeadlineHeap()
        let fired = heap.insert(10)
        XCTAssertEqual(heap.popExpired(now: 10), fired.slot)
        let reused = heap.insert(50)
        XCTAssertEqual(reused.slot, fired.slot, "the freed slot is reused")
        XCTAssertFalse(heap.cancel(fired), "the fired deadline's handle is stale")
        XCTAssertTrue(heap.isPending(reused))
        XCTAssertEqual(heap.earliest, 50)
    }

    /// Random inserts, cancels and pops against a sorted-list model: every pop is the model's
    /// earliest due deadline (ties in any order), every cancel agrees on what was pending.
    func testAgreesWithASortedModelUnderRandomOperations() {
        var generator = SeededGenerator(seed: 0x5EED)  // LearnRegistryTests' SplitMix64
        var heap = DeadlineHeap()
        var model: [DeadlineHeap.Handle: UInt64] = [:]
        var handles: [DeadlineHeap.Handle] = []
        var now: UInt64 = 0
        for _ in 0..<20_000 {
            switch generator.next() % 10 {
            case 0...3:
                let deadline = now + generator.next() % 1_000
                let handle = heap.insert(deadline)
                XCTAssertNil(model[handle], "a pending handle was handed out twice")
                model[handle] = deadline
                handles.append(handle)
            case 4...6:
                guard !handles.isEmpty else { continue }
                let handle = handles[Int(generator.next() % UInt64(handles.count))]
                XCTAssertEqual(heap.cancel(handle), model.removeValue(forKey: handle) != nil)
            default:
                now += generator.next() % 50
                while let slot = heap.popExpired(now: now) {
                    let due = model.filter { $0.value <= now }
                    let earliest = due.values.min()
                    guard let (handle, deadline) = due.first(where: { $0.key.slot == slot }) else {
                        return XCTFail("popped slot \(slot), which the model has no due deadline for")
                    }
                    XCTAssertEqual(deadline, earliest, "popped out of order")
                    model.removeValue(forKey: handle)
                }
                XCTAssertFalse(model.values.contains { $0 <= now }, "a due deadline was left")
            }
            XCTAssertEqual(heap.count, model.count)
            XCTAssertEqual(heap.earliest, model.values.min())
        }
    }
}
