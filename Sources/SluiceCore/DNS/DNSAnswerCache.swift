/// Upstream answers kept for reuse, keyed by question (name, type): a cache hit is answered
/// without a round trip. Bounded (`capacity`; when full, expired entries go, then everything),
/// TTL from the answer's smallest record TTL, capped; NXDOMAIN kept `negativeTTL`. Pure: the
/// caller passes the time in seconds.
public struct DNSAnswerCache: Sendable {
    private struct Key: Hashable {
        let name: String
        let type: UInt16
    }

    private struct Entry {
        let answers: [DNSRecord]
        let rcode: DNSResponseCode
        let expiresAt: UInt64
    }

    /// Most questions held.
    public let capacity: Int
    /// Longest time an answer is reused, in seconds.
    public let maximumTTL: UInt32
    /// How long a NXDOMAIN is reused, in seconds.
    public let negativeTTL: UInt32
    private var entries: [Key: Entry] = [:]

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
        if entries.count >= capacity {
            entries = entries.filter { $0.value.expiresAt > now }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[Key(name: question.name, type: question.type.rawValue)] =
            Entry(answers: response.answers, rcode: response.rcode, expiresAt: now + UInt64(ttl))
    }
}
