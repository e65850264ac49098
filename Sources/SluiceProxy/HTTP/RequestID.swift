/// A random version-4 UUID in lower case, the form Envoy puts in `x-request-id`.
func makeRequestID() -> String {
    var rng = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: 16)
    let high = rng.next() as UInt64
    let low = rng.next() as UInt64
    for i in 0..<8 {
        bytes[i] = UInt8(truncatingIfNeeded: high >> (UInt64(i) * 8))
        bytes[8 + i] = UInt8(truncatingIfNeeded: low >> (UInt64(i) * 8))
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
    bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(36)
    for (i, byte) in bytes.enumerated() {
        if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}
