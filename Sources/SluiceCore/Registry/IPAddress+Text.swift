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
            var out = BoundedWriter(UnsafeMutableRawBufferPointer(buffer))
            switch self {
            case .v4(let value):
                out.writeV4(value)
                if let port {
                    out.write(UInt8(ascii: ":"))
                    out.writeDecimal(Int64(port))
                }
            case .v6(let high, let low):
                if port != nil { out.write(UInt8(ascii: "[")) }
                out.writeV6(high: high, low: low)
                if let port {
                    out.write("]:")
                    out.writeDecimal(Int64(port))
                }
            }
            return out.count
        }
    }
}

/// Address text on the project's bounded byte cursor (the access log's and heads' writer).
extension BoundedWriter {
    mutating func writeV4(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            if shift != 24 { write(UInt8(ascii: ".")) }
            writeDecimal(UInt64(value >> UInt32(shift) & 0xFF))
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
            write("::ffff:")
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
                write("::")
                index += bestLength
                continue
            }
            if index > 0 && index != bestStart + bestLength { write(UInt8(ascii: ":")) }
            writeHexGroup(group(index))
            index += 1
        }
    }
}
