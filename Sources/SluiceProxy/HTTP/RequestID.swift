/// A random version-4 UUID in lower case, the form Envoy puts in `x-request-id`.
/// Written straight into the string's storage: this runs for every request without one.
func makeRequestID() -> String {
    var rng = SystemRandomNumberGenerator()
    let high = rng.next() as UInt64
    let low = rng.next() as UInt64
    return String(unsafeUninitializedCapacity: 36) { out in
        let hex: StaticString = "0123456789abcdef"
        var o = 0
        for i in 0..<16 {
            var byte = UInt8(truncatingIfNeeded: (i < 8 ? high : low) >> (UInt64(i % 8) * 8))
            if i == 6 { byte = (byte & 0x0F) | 0x40 }  // version 4
            if i == 8 { byte = (byte & 0x3F) | 0x80 }  // RFC 4122 variant
            if i == 4 || i == 6 || i == 8 || i == 10 {
                out[o] = UInt8(ascii: "-")
                o += 1
            }
            hex.withUTF8Buffer { digits in
                out[o] = digits[Int(byte >> 4)]
                out[o + 1] = digits[Int(byte & 0x0F)]
            }
            o += 2
        }
        return o
    }
}
