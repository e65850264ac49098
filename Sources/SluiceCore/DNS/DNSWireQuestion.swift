/// The question of a raw DNS query, read in place for the DNS proxy's cache-hit path
/// (`DNSAnswerCache.wireResponse`), without building a message.
///
/// Only a plain query qualifies, one the full parser reads the same way: QR and opcode 0,
/// exactly one question and no answer or authority records (additional records, EDNS, are
/// ignored by both), a name of uncompressed labels of printable ASCII without dots, at most
/// 255 bytes. Anything else returns nil and takes the full path.
struct DNSWireQuestion {
    /// Bytes of the question (name, type, class), from offset 12.
    let length: Int
    /// FNV-1a 64 of the question with its name lowercased.
    let hash: UInt64

    private static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    private static let prime: UInt64 = 0x100_0000_01B3

    /// Reads the question of a plain query; nil for anything else.
    init?(_ bytes: UnsafeRawBufferPointer) {
        // Header: id(2) flags(2) QDCOUNT ANCOUNT NSCOUNT ARCOUNT; QR and opcode are flags' top 5 bits.
        guard bytes.count >= 12 + 5, bytes[2] & 0xF8 == 0,
              bytes[4] == 0, bytes[5] == 1, bytes[6] == 0, bytes[7] == 0, bytes[8] == 0, bytes[9] == 0
        else { return nil }
        self.init(questionOf: bytes)
    }

    /// Reads the first question of any message (the cache's own responses), header unchecked.
    init?(questionOf bytes: UnsafeRawBufferPointer) {
        var hash = Self.offsetBasis
        var offset = 12
        var wireLength = 1
        while true {
            guard offset < bytes.count else { return nil }
            let length = Int(bytes[offset])
            hash = (hash ^ UInt64(length)) &* Self.prime
            offset += 1
            if length == 0 { break }
            // Over 63 is a pointer (0xC0) or an extended type: the full parser's business.
            wireLength += length + 1
            guard length <= 63, wireLength <= 255, offset + length <= bytes.count else { return nil }
            for index in offset..<(offset + length) {
                let byte = bytes[index]
                guard byte >= 0x21, byte <= 0x7E, byte != UInt8(ascii: ".") else { return nil }
                hash = (hash ^ UInt64(DNSReader.lowercased(byte))) &* Self.prime
            }
            offset += length
        }
        guard offset + 4 <= bytes.count else { return nil }
        for index in offset..<(offset + 4) { hash = (hash ^ UInt64(bytes[index])) &* Self.prime }
        self.length = offset + 4 - 12
        self.hash = hash
    }

    /// True when the question in `query` is the one at the start of `stored` (a response whose
    /// name is lowercase), ignoring the query name's case.
    func matches(_ query: UnsafeRawBufferPointer, stored: [UInt8]) -> Bool {
        let typeAt = 12 + length - 4
        guard stored.count >= 12 + length else { return false }
        // The name ignoring case (label length bytes are below "A"), type and class exactly.
        for index in 12..<typeAt where DNSReader.lowercased(query[index]) != stored[index] { return false }
        for index in typeAt..<(typeAt + 4) where query[index] != stored[index] { return false }
        return true
    }
}
