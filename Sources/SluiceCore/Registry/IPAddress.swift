/// An IPv4 or IPv6 address, stored as plain integers so that CIDR matching is arithmetic.
///
/// Parsing is deliberately strict: an address that could be read two ways (`010.0.0.1` is
/// octal to some C libraries) or that names an interface (`fe80::1%eth0`) is rejected rather
/// than guessed at, because a registry that means something else than it says is a hole.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address in host byte order (`10.0.0.1` is `0x0A00_0001`).
    case v4(UInt32)
    /// An IPv6 address as its high and low 64 bits, in host byte order.
    case v6(UInt64, UInt64)

    /// Parses a dotted quad (`192.0.2.1`) or RFC 4291 IPv6 text (`2001:db8::1`, `::`,
    /// `::ffff:192.0.2.1`). Returns nil for anything else: no leading zeros in IPv4 octets,
    /// no zone ids, no brackets, no surrounding whitespace.
    public init?(_ string: String) {
        let utf8 = Array(string.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = IPAddress.parseV6(utf8) else { return nil }
            self = .v6(high, low)
        } else {
            guard let value = IPAddress.parseV4(utf8[...]) else { return nil }
            self = .v4(value)
        }
    }

    /// Builds an address from its raw bytes (4 or 16, network order), as a socket address holds them.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in bytes.enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self = .v6(high, low)
        default:
            return nil
        }
    }

    /// The canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, longest zero
    /// run compressed, IPv4-mapped addresses as `::ffff:a.b.c.d`).
    public var description: String {
        self.text(port: nil)
    }

    /// `::ffff:a.b.c.d` as the IPv4 address `a.b.c.d`; any other address unchanged.
    ///
    /// A dual-stack socket reports IPv4 peers this way, and registry CIDRs are written as IPv4.
    public var unmappedIPv4: IPAddress {
        if case .v6(let high, let low) = self, high == 0, low >> 32 == 0xFFFF {
            return .v4(UInt32(truncatingIfNeeded: low))
        }
        return self
    }

    /// True for IPv4 addresses (IPv4-mapped IPv6 addresses are not IPv4 until unmapped).
    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The address's width in bits: 32 or 128.
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// The address as bytes in network order (4 or 16), for building socket addresses.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    // MARK: - Parsing

    private static func parseV4(_ text: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // "01" is octal to inet_aton and decimal to others: refuse the ambiguity.
                if digits == 1 && leadingZero { return nil }
                if digits == 0 { leadingZero = byte == UInt8(ascii: "0") }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || current > 255 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    private static func hexValue(_ byte: UInt8) -> UInt16? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt16(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt16(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt16(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// RFC 4291 section 2.2: eight 16-bit groups, one `::` for a run of zero groups,
    /// optionally ending in a dotted quad for the low 32 bits.
    private static func parseV6(_ text: [UInt8]) -> (UInt64, UInt64)? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        let colon = UInt8(ascii: ":")
        var groups: [UInt16] = []
        var compressAt: Int? = nil
        var index = 0
        if text[0] == colon {
            // Only "::" may start an address; a single leading colon is malformed.
            guard text[1] == colon else { return nil }
            compressAt = 0
            index = 2
        }
        while index < text.count {
            // Find the end of this group.
            var end = index
            while end < text.count, text[end] != colon { end += 1 }
            let group = text[index..<end]
            if group.contains(UInt8(ascii: ".")) {
                // An embedded IPv4 address must be the last thing in the text.
                guard end == text.count, groups.count <= 6, let v4 = parseV4(group) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                index = end
                break
            }
            guard !group.isEmpty, group.count <= 4 else { return nil }
            var value: UInt16 = 0
            for byte in group {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | digit
            }
            groups.append(value)
            guard groups.count <= 8 else { return nil }
            if end == text.count { index = end; break }
            // end is a colon: either a separator or the start of "::".
            if end + 1 < text.count, text[end + 1] == colon {
                guard compressAt == nil else { return nil }
                compressAt = groups.count
                index = end + 2
            } else {
                guard end + 1 < text.count else { return nil }  // trailing single colon
                index = end + 1
            }
        }
        if let compressAt {
            // "::" stands for at least one zero group.
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: compressAt)
        }
        guard groups.count == 8 else { return nil }
        let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }
}
