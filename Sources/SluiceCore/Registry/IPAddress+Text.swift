/// The address as text, written byte by byte into one string: this runs for every accepted
/// connection (its two `ip:port` access-log fields), where string interpolation cost several
/// allocations and glibc's `inet_ntop` a `sprintf` per IPv4 address.
extension IPAddress {
    /// `ip:port` as Envoy's access log writes an endpoint (`[ip]:port` for IPv6).
    public func endpointText(port: Int) -> String {
        self.text(port: port)
    }

    /// The canonical text, with `:port` (and brackets around IPv6) when `port` is given:
    /// dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, no leading zeros, the longest run of
    /// two or more zero groups, the first on a tie, as `::`; IPv4-mapped as `::ffff:a.b.c.d`).
    func text(port: Int?) -> String {
        // Longest: "[" + 39 + "]:" + a 20-digit Int = 62 bytes.
        String(unsafeUninitializedCapacity: 64) { buffer in
            var out = ASCIIWriter(buffer)
            switch self {
            case .v4(let value):
                out.writeV4(value)
                if let port {
                    out.write(UInt8(ascii: ":"))
                    out.writeDecimal(port)
                }
            case .v6(let high, let low):
                if port != nil { out.write(UInt8(ascii: "[")) }
                out.writeV6(high: high, low: low)
                if let port {
                    out.write(UInt8(ascii: "]"))
                    out.write(UInt8(ascii: ":"))
                    out.writeDecimal(port)
                }
            }
            return out.count
        }
    }
}

/// Appends ASCII to a buffer the caller sized for the longest text.
private struct ASCIIWriter {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    mutating func write(_ byte: UInt8) {
        buffer[count] = byte
        count += 1
    }

    /// A non-negative decimal (a negative one, which no port is, as its magnitude after `-`).
    mutating func writeDecimal(_ value: Int) {
        if value < 0 { write(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var scale: UInt = 1
        while magnitude / scale >= 10 {
            scale *= 10
            digits += 1
        }
        while scale > 0 {
            write(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude / scale))
            magnitude %= scale
            scale /= 10
        }
    }

    mutating func writeV4(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            if shift != 24 { write(UInt8(ascii: ".")) }
            writeDecimal(Int(value >> UInt32(shift) & 0xFF))
        }
    }

    mutating func writeHexGroup(_ group: UInt16) {
        var started = false
        for shift in stride(from: 12, through: 0, by: -4) {
            let nibble = UInt8(truncatingIfNeeded: group >> UInt16(shift) & 0xF)
            if nibble == 0 && !started && shift != 0 { continue }
            started = true
            write(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
    }

    mutating func writeV6(high: UInt64, low: UInt64) {
        if high == 0, low >> 32 == 0xFFFF {
            for byte in "::ffff:".utf8 { write(byte) }
            writeV4(UInt32(truncatingIfNeeded: low))
            return
        }
        func group(_ index: Int) -> UInt16 {
            index < 4
                ? UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * index))
                : UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * (index - 4)))
        }
        // The longest run of zero groups (the first on a tie); compressed only from two groups.
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for index in 0...8 {
            if index < 8, group(index) == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                let length = index - runStart
                if length > bestLength { bestStart = runStart; bestLength = length }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var index = 0
        while index < 8 {
            if index == bestStart {
                write(UInt8(ascii: ":"))
                write(UInt8(ascii: ":"))
                index += bestLength
                continue
            }
            if index > 0 && index != bestStart + bestLength { write(UInt8(ascii: ":")) }
            writeHexGroup(group(index))
            index += 1
        }
    }
}
