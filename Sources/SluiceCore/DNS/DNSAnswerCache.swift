public import NIOCore

/// Upstream answers kept for reuse, keyed by question (name, type): a cache hit is answered
/// without a round trip. Bounded (`capacity`; when full, expired entries go, then everything),
/// TTL from the answer's smallest record TTL, capped; NXDOMAIN kept `negativeTTL`. Pure: the
/// caller passes the time in seconds.
///
/// Each answer is also kept encoded, as the response `response(to:now:)` would write for it
/// (the question, then the answers, at offsets fixed once), so that the DNS proxy's cache-hit
/// path (`wireResponse(to:now:allocator:)`) neither parses a message nor builds one: it finds
/// the entry by a hash of the raw question, copies the bytes and patches the id, the RD bit
/// and each TTL.
public struct DNSAnswerCache: Sendable {
    struct Key: Hashable {
        let name: String
        let type: UInt16
    }

    struct Entry {
        let key: Key
        let answers: [DNSRecord]
        let rcode: DNSResponseCode
        let expiresAt: UInt64
        /// The response to the question with id 0 and RD clear.
        let wire: [UInt8]
        /// Where each answer's TTL is in `wire`, and the TTL it had.
        let ttls: [(offset: Int, ttl: UInt32)]
        /// What the learned-address table takes from the answer (see `LearnedAddresses`).
        let learnable: DNSLearnable
    }

    /// Most questions held.
    public let capacity: Int
    /// Longest time an answer is reused, in seconds.
    public let maximumTTL: UInt32
    /// How long a NXDOMAIN is reused, in seconds.
    public let negativeTTL: UInt32
    private var entries: [Key: Entry] = [:]
    /// The entries again, by `DNSWireQuestion.hash` of their question: the cache-hit path's
    /// one lookup, keyed by an integer (a hash shared by two questions keeps the later one;
    /// the other is still found by `response(to:now:)`).
    private var byWireHash: [UInt64: Entry] = [:]

    /// Creates an empty cache.
    public init(capacity: Int = 1024, maximumTTL: UInt32 = 300, negativeTTL: UInt32 = 30) {
        self.capacity = max(1, capacity)
        self.maximumTTL = maximumTTL
        self.negativeTTL = negativeTTL
    }

    /// The response to `query` from the cache, if its question is there and fresh at `now`.
    public func response(to query: DNSMessage, now: UInt64) -> DNSMessage? {
        guard let question = query.questions.first,
              let entry = entries[Key(name: question.name, type: question.type.rawValue)], entry.expiresAt > now
        else { return nil }
        let left = UInt32(clamping: entry.expiresAt - now)
        return query.response(rcode: entry.rcode, answers: entry.answers.map { record in
            var aged = record
            aged.ttl = min(record.ttl, left)
            return aged
        })
    }

    /// The same response as `response(to:now:)` gives, for the raw `query` (a UDP payload or
    /// a TCP message), as bytes in a buffer from `allocator`: nil when the question is not
    /// cached or fresh, or the query is not a plain one (`DNSWireQuestion`); the caller then
    /// takes the full path.
    public func wireResponse(to query: ByteBuffer, now: UInt64, allocator: ByteBufferAllocator) -> DNSWireAnswer? {
        query.withUnsafeReadableBytes { raw -> DNSWireAnswer? in
            guard let (entry, left) = fresh(raw, now: now) else { return nil }
            var buffer = allocator.buffer(capacity: entry.wire.count)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: entry.wire.count) { out in
                Self.patch(entry, left: left, query: raw, into: out)
                return entry.wire.count
            }
            return DNSWireAnswer(bytes: buffer, learnable: entry.learnable, secondsLeft: left)
        }
    }

    /// The same response as `wireResponse(to:now:allocator:)`, written at the start of `out`
    /// (the DNS proxy's hit thread: a reply slot allocated once, nothing allocated per query).
    /// Nil when the query is not a hit, or its response does not fit in `out`.
    public func writeResponse(to query: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, now: UInt64) -> DNSWireHit? {
        guard let (entry, left) = fresh(query, now: now), entry.wire.count <= out.count else { return nil }
        Self.patch(entry, left: left, query: query, into: out)
        return DNSWireHit(length: entry.wire.count, learnable: entry.learnable, secondsLeft: left)
    }

    /// The fresh entry for a plain query's question, and its seconds left.
    private func fresh(_ raw: UnsafeRawBufferPointer, now: UInt64) -> (Entry, UInt32)? {
        guard let question = DNSWireQuestion(raw),
              let entry = byWireHash[question.hash], entry.expiresAt > now,
              question.matches(raw, stored: entry.wire)
        else { return nil }
        return (entry, UInt32(clamping: entry.expiresAt - now))
    }

    /// Copies the entry's response into `out` (at least `wire.count` bytes) with the query's
    /// id and RD bit, and each TTL capped at `left`.
    private static func patch(_ entry: Entry, left: UInt32, query: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        entry.wire.withUnsafeBytes { out.copyMemory(from: $0) }
        out[0] = query[0]
        out[1] = query[1]
        out[2] = entry.wire[2] | (query[2] & 0x01)  // RD copied
        for (offset, ttl) in entry.ttls { out.storeBytes(of: min(ttl, left).bigEndian, toByteOffset: offset, as: UInt32.self) }
    }

    /// Keeps `response` (to its first question) if it is a NOERROR with answers or an NXDOMAIN.
    public mutating func store(_ response: DNSMessage, now: UInt64) {
        guard let question = response.questions.first else { return }
        let ttl: UInt32
        switch response.rcode {
        case .noError:
            guard let smallest = response.answers.map(\.ttl).min(), smallest > 0 else { return }
            ttl = min(smallest, maximumTTL)
        case .nameError:
            ttl = negativeTTL
        default:
            return
        }
        // What `response(to:)` answers, encoded once: the query's id and RD are patched in.
        let answer = DNSMessage(id: 0, flags: 0, questions: [question]).response(rcode: response.rcode, answers: response.answers)
        guard let (wire, ttlOffsets) = try? answer.serializedWithTTLOffsets(),
              let hash = wire.withUnsafeBytes({ DNSWireQuestion(questionOf: $0)?.hash })
        else { return }
        if entries.count >= capacity {
            entries = entries.filter { $0.value.expiresAt > now }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            byWireHash = byWireHash.filter { entries[$0.value.key] != nil }
        }
        let key = Key(name: question.name, type: question.type.rawValue)
        let entry = Entry(
            key: key, answers: response.answers, rcode: response.rcode, expiresAt: now + UInt64(ttl), wire: wire,
            ttls: zip(ttlOffsets, response.answers).map { ($0, $1.ttl) }, learnable: DNSLearnable(response))
        entries[key] = entry
        byWireHash[hash] = entry
    }

    /// Forgets every answer (the policy that let them through changed).
    public mutating func removeAll() {
        entries.removeAll()
        byWireHash.removeAll()
    }
}

/// A cache hit written in place (`writeResponse`): its length, and what to learn from it.
public struct DNSWireHit: Sendable {
    /// Bytes of the response written.
    public let length: Int
    /// The addresses the answer gives for the question's name.
    public let learnable: DNSLearnable
    /// Seconds the cached answer has left (its TTLs are capped at this).
    public let secondsLeft: UInt32
}

/// A cache hit on the raw path: the response bytes, and what to learn from them.
public struct DNSWireAnswer: Sendable {
    /// The response, ready to send (UDP) or to frame (TCP).
    public var bytes: ByteBuffer
    /// The addresses the answer gives for the question's name.
    public let learnable: DNSLearnable
    /// Seconds the cached answer has left (its TTLs are capped at this).
    public let secondsLeft: UInt32
}
