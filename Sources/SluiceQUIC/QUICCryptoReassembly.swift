/// The Initial CRYPTO stream put back together by offset (CRYPTO frames may arrive out of
/// order, overlap, repeat, and span several packets and datagrams).
///
/// Bounded: data past `limit` bytes of stream, or more than `maxRanges` separate pieces, is
/// refused, so a flow can hold at most `limit` bytes however it is fed.
struct QUICCryptoReassembly: Sendable {
    /// Most bytes of the stream kept: a ClientHello must end within them.
    let limit: Int
    /// Most separate received pieces (a hostile sender could otherwise send 1-byte holes).
    static let maxRanges = 64
    /// The stream's bytes from offset 0 up to the highest end received (holes are zeros).
    private(set) var bytes: [UInt8] = []
    /// What has arrived: sorted, disjoint, not touching.
    private var ranges: [Range<Int>] = []

    init(limit: Int) { self.limit = limit }

    /// How many bytes from offset 0 have arrived without a hole.
    var contiguousCount: Int {
        guard let first = ranges.first, first.lowerBound == 0 else { return 0 }
        return first.upperBound
    }

    /// Adds `data` at stream `offset`; false when it ends past `limit` or makes too many pieces.
    mutating func insert(offset: UInt64, _ data: ArraySlice<UInt8>) -> Bool {
        guard offset <= UInt64(limit), Int(offset) + data.count <= limit else { return false }
        guard !data.isEmpty else { return true }
        let range = Int(offset)..<(Int(offset) + data.count)
        // Merge with every range it overlaps or touches.
        var merged = range
        var kept: [Range<Int>] = []
        kept.reserveCapacity(ranges.count + 1)
        for existing in ranges {
            if existing.upperBound < merged.lowerBound || existing.lowerBound > merged.upperBound {
                kept.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        guard kept.count < QUICCryptoReassembly.maxRanges else { return false }
        kept.append(merged)
        kept.sort { $0.lowerBound < $1.lowerBound }
        ranges = kept
        if bytes.count < range.upperBound { bytes.append(contentsOf: repeatElement(0, count: range.upperBound - bytes.count)) }
        bytes.replaceSubrange(range, with: data)
        return true
    }
}
