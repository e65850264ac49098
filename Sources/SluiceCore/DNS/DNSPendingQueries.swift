/// The queries in flight on one long-lived upstream socket of the DNS proxy's forwarder, by
/// the id each was sent with: every query leaves with a fresh random 16-bit id (RFC 5452
/// section 9.2: ids unpredictable, so that an off-path attacker must guess one), never one
/// already in flight on the socket, and an answer is taken only when its id is in flight and
/// its question is the query's, byte for byte (section 9.1: id and question checked; the
/// socket is connected, so the kernel has already checked the source address and port).
/// Anything else is a spoofed, corrupt or late answer (its query timed out or was answered):
/// `take` returns nil and the caller drops and counts it.
///
/// Pure: the caller passes the random source, sends the bytes and runs the timers; `Waiter`
/// is what it completes when the answer comes (or `remove`s when it does not).
public struct DNSPendingQueries<Waiter> {
    struct Pending {
        let originalID: UInt16
        let question: [UInt8]
        let waiter: Waiter
    }

    /// Most queries in flight at once; `add` refuses more.
    public let capacity: Int
    private var pending: [UInt16: Pending] = [:]

    /// Creates an empty table; `capacity` is capped at the 65,536 ids there are.
    public init(capacity: Int = 4096) {
        self.capacity = min(max(1, capacity), 1 << 16)
    }

    /// Queries in flight.
    public var count: Int { pending.count }

    /// Registers `query` (a DNS message of at least a header) and rewrites its id in place to
    /// a random one no query in flight has; returns that id, or nil when the table is full or
    /// the query is shorter than a header.
    public mutating func add(_ query: inout [UInt8], waiter: Waiter, using random: inout some RandomNumberGenerator) -> UInt16? {
        guard query.count >= 12, pending.count < capacity else { return nil }
        var id = UInt16.random(in: .min ... .max, using: &random)
        while pending[id] != nil { id = UInt16.random(in: .min ... .max, using: &random) }
        let original = UInt16(query[0]) << 8 | UInt16(query[1])
        pending[id] = Pending(originalID: original, question: Self.question(of: query), waiter: waiter)
        query[0] = UInt8(id >> 8)
        query[1] = UInt8(id & 0xFF)
        return id
    }

    /// The waiter of the query `answer` answers, removed from the table, with `answer`'s id
    /// put back to the one the query came with; nil (and the table unchanged) for an answer
    /// whose id is not in flight or whose question is not the query's.
    public mutating func take(_ answer: inout [UInt8]) -> Waiter? {
        guard answer.count >= 12 else { return nil }
        let id = UInt16(answer[0]) << 8 | UInt16(answer[1])
        guard let entry = pending[id], answer[2] & 0x80 != 0, Self.question(of: answer) == entry.question else { return nil }
        pending[id] = nil
        answer[0] = UInt8(entry.originalID >> 8)
        answer[1] = UInt8(entry.originalID & 0xFF)
        return entry.waiter
    }

    /// Forgets the query sent with `id` (its time ran out); its waiter, if it was in flight.
    public mutating func remove(id: UInt16) -> Waiter? {
        pending.removeValue(forKey: id)?.waiter
    }

    /// Forgets every query (the socket closed); their waiters.
    public mutating func removeAll() -> [Waiter] {
        defer { pending.removeAll() }
        return pending.values.map(\.waiter)
    }

    /// The question count and question section of a message (the bytes from offset 4 to 6,
    /// then from 12 to the end of the last question: names are compared as sent, case and
    /// all, since a resolver echoes them). A name that runs past the end, or is compressed
    /// (nothing precedes the first question to point at), ends the section where it breaks;
    /// both sides are cut the same way, so a well-formed answer still matches its query.
    static func question(of message: [UInt8]) -> [UInt8] {
        let count = Int(message[4]) << 8 | Int(message[5])
        var offset = 12
        var questions = 0
        scan: while questions < count {
            while offset < message.count {
                let length = Int(message[offset])
                if length == 0 { break }
                if length > 63 { break scan }
                offset += 1 + length
            }
            offset += 1 + 4  // the root label, type and class
            guard offset <= message.count else { break }
            questions += 1
        }
        return Array(message[4..<6]) + Array(message[12..<min(max(offset, 12), message.count)])
    }
}
