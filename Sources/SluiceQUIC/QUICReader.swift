/// A bounds-checked cursor over QUIC wire bytes (a packet, a decrypted payload): every read
/// returns nil when the bytes are not there, so a lying length never reads past its packet.
struct QUICReader {
    private let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    /// Reads `bytes[window]`; the window is clamped to the array.
    init(_ bytes: [UInt8], _ window: Range<Int>? = nil) {
        self.bytes = bytes
        let window = window ?? 0..<bytes.count
        position = max(0, min(window.lowerBound, bytes.count))
        end = max(position, min(window.upperBound, bytes.count))
    }

    var remaining: Int { end - position }

    mutating func readByte() -> UInt8? {
        guard position < end else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next `count` bytes' range in the underlying array, consumed.
    mutating func readRange(_ count: Int) -> Range<Int>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return position..<(position + count)
    }

    mutating func readBytes(_ count: Int) -> ArraySlice<UInt8>? {
        readRange(count).map { bytes[$0] }
    }

    mutating func readUInt32() -> UInt32? {
        guard let range = readRange(4) else { return nil }
        return range.reduce(0) { $0 << 8 | UInt32(bytes[$1]) }
    }

    /// A variable-length integer (RFC 9000 §16): the first byte's two high bits give its
    /// length, 1, 2, 4 or 8 bytes; values up to 2^62 - 1.
    mutating func readVarInt() -> UInt64? {
        guard position < end else { return nil }
        let length = 1 << Int(bytes[position] >> 6)
        guard let range = readRange(length) else { return nil }
        var value = UInt64(bytes[range.lowerBound] & 0x3F)
        for index in range.dropFirst() { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    /// A varint that must fit what is left to read (a length field).
    mutating func readLength() -> Int? {
        guard let value = readVarInt(), value <= UInt64(remaining) else { return nil }
        return Int(value)
    }
}
