/// A request id the proxy made up for a request that came without one (Envoy's
/// `x-request-id`): a version-4 UUID, kept as its 128 bits and written as text
/// (`8-4-4-4-12` lower-case hex) only where it goes — the forwarded head and the log line.
/// (As a `String` it was a 36-byte heap allocation on every request.)
public struct GeneratedRequestID: Sendable, Hashable {
    public let high: UInt64
    public let low: UInt64

    /// The UUID from 128 random bits; the version (4) and RFC 4122 variant bits are set here.
    public init(random high: UInt64, _ low: UInt64) {
        // Byte 6 is the high word's seventh byte from the bottom: the bytes are written low
        // byte first, as `write(to:)` lays them out.
        self.high = (high & ~(UInt64(0xF0) << 48)) | (UInt64(0x40) << 48)
        self.low = (low & ~UInt64(0xC0)) | UInt64(0x80)
    }

    /// Length of the text form.
    public static let textLength = 36

    /// The text form, for logs and tests.
    public var text: String {
        var buffer = [UInt8](repeating: 0, count: Self.textLength)
        buffer.withUnsafeMutableBytes { raw in
            var w = BoundedWriter(raw)
            write(to: &w)
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Writes the 36-byte text form.
    /// (It is written twice per request, into the head and the log line: eight hex digits are
    /// made at a time rather than one.)
    func write(to w: inout BoundedWriter) {
        let a = Self.hex(UInt32(truncatingIfNeeded: high))
        let b = Self.hex(UInt32(truncatingIfNeeded: high >> 32))
        let c = Self.hex(UInt32(truncatingIfNeeded: low))
        let d = Self.hex(UInt32(truncatingIfNeeded: low >> 32))
        let dash = UInt8(ascii: "-")
        w.writeSlot(Self.textLength) { out in
            // bytes 0-3 | 4-5 | 6-7 | 8-9 | 10-15, each byte as two digits, high nibble first.
            out.storeBytes(of: a.littleEndian, toByteOffset: 0, as: UInt64.self)
            out[8] = dash
            out.storeBytes(of: UInt32(truncatingIfNeeded: b).littleEndian, toByteOffset: 9, as: UInt32.self)
            out[13] = dash
            out.storeBytes(of: UInt32(truncatingIfNeeded: b >> 32).littleEndian, toByteOffset: 14, as: UInt32.self)
            out[18] = dash
            out.storeBytes(of: UInt32(truncatingIfNeeded: c).littleEndian, toByteOffset: 19, as: UInt32.self)
            out[23] = dash
            out.storeBytes(of: UInt32(truncatingIfNeeded: c >> 32).littleEndian, toByteOffset: 24, as: UInt32.self)
            out.storeBytes(of: d.littleEndian, toByteOffset: 28, as: UInt64.self)
        }
    }

    /// The four bytes of `v` (lowest first) as eight lower-case hex digits, high nibble first,
    /// packed so that storing the result little-endian lays them out in order.
    @inline(__always)
    static func hex(_ v: UInt32) -> UInt64 {
        var x = UInt64(v)
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF  // each byte in its own 16-bit lane
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
        x = ((x >> 4) & 0x000F_000F_000F_000F) | ((x & 0x000F_000F_000F_000F) << 8)  // one nibble per byte
        let letters = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101  // 1 where nibble > 9
        return x &+ 0x3030_3030_3030_3030 &+ letters &* 0x27  // '0' + n, or 'a' + n - 10
    }
}
