/// The pending deadlines of one event loop's connections, earliest first, each cancellable in
/// O(log n) through the handle its insertion returned.
///
/// NIO keeps every scheduled task in one heap and finds a cancelled one by a linear search,
/// then re-heapifies entries that carry existentials: a sniff timeout and an HTTP deadline
/// armed and cancelled per accepted connection cost ~18k instructions (callgrind). Here an
/// entry is two integers, every slot knows its position in the heap, and the loop keeps a
/// single NIO timer for the earliest deadline (`LoopTimers` in SluiceProxy).
///
/// A handle names a slot and the slot's generation: a stale handle (its deadline fired or was
/// cancelled, the slot reused since) cancels nothing.
public struct DeadlineHeap: Sendable {
    /// One pending deadline's name.
    public struct Handle: Hashable, Sendable {
        public let slot: Int
        let generation: UInt32
    }

    private struct Entry: Sendable {
        var deadline: UInt64
        var slot: Int
    }

    private var heap: [Entry] = []
    /// Per slot: its entry's index in `heap`, or -1 when the slot is free.
    private var positions: [Int] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []

    public init() {}

    /// How many deadlines are pending.
    public var count: Int { self.heap.count }

    /// The earliest pending deadline.
    public var earliest: UInt64? { self.heap.first?.deadline }

    /// Adds `deadline` (nanoseconds on the loop's clock); the handle cancels it.
    public mutating func insert(_ deadline: UInt64) -> Handle {
        let slot: Int
        if let free = self.freeSlots.popLast() {
            slot = free
        } else {
            slot = self.positions.count
            self.positions.append(-1)
            self.generations.append(0)
        }
        self.heap.append(Entry(deadline: deadline, slot: slot))
        self.positions[slot] = self.heap.count - 1
        self.siftUp(self.heap.count - 1)
        return Handle(slot: slot, generation: self.generations[slot])
    }

    /// Whether `handle`'s deadline is still pending.
    public func isPending(_ handle: Handle) -> Bool {
        handle.slot < self.positions.count && self.positions[handle.slot] >= 0
            && self.generations[handle.slot] == handle.generation
    }

    /// Removes `handle`'s deadline; false when it was no longer pending (fired, cancelled).
    @discardableResult
    public mutating func cancel(_ handle: Handle) -> Bool {
        guard self.isPending(handle) else { return false }
        self.remove(at: self.positions[handle.slot])
        return true
    }

    /// Removes and returns the earliest deadline's slot when that deadline is at or before `now`.
    public mutating func popExpired(now: UInt64) -> Int? {
        guard let first = self.heap.first, first.deadline <= now else { return nil }
        self.remove(at: 0)
        return first.slot
    }

    private mutating func remove(at index: Int) {
        let slot = self.heap[index].slot
        let last = self.heap.removeLast()
        if index < self.heap.count {
            self.heap[index] = last
            self.positions[last.slot] = index
            if index > 0, self.heap[(index - 1) / 2].deadline > last.deadline {
                self.siftUp(index)
            } else {
                self.siftDown(index)
            }
        }
        self.positions[slot] = -1
        self.generations[slot] &+= 1
        self.freeSlots.append(slot)
    }

    private mutating func siftUp(_ start: Int) {
        var index = start
        let entry = self.heap[index]
        while index > 0 {
            let parent = (index - 1) / 2
            guard self.heap[parent].deadline > entry.deadline else { break }
            self.heap[index] = self.heap[parent]
            self.positions[self.heap[index].slot] = index
            index = parent
        }
        self.heap[index] = entry
        self.positions[entry.slot] = index
    }

    private mutating func siftDown(_ start: Int) {
        var index = start
        let entry = self.heap[index]
        let count = self.heap.count
        while true {
            let left = 2 * index + 1
            guard left < count else { break }
            let right = left + 1
            let child = right < count && self.heap[right].deadline < self.heap[left].deadline ? right : left
            guard self.heap[child].deadline < entry.deadline else { break }
            self.heap[index] = self.heap[child]
            self.positions[self.heap[index].slot] = index
            index = child
        }
        self.heap[index] = entry
        self.positions[entry.slot] = index
    }
}
