/// An IP network: an address and a prefix length, as written in ServiceEntry `addresses`.
///
/// The stored address always has its host bits cleared, so two spellings of the same network
/// compare equal. IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) are stored as the IPv4
/// network they denote, so they match connections however the socket reports the peer.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let address: IPAddress
    /// The number of leading bits that identify the network: 0–32 for IPv4, 0–128 for IPv6.
    public let prefixLength: Int

    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
    /// Host bits that are set are accepted and cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    public init?(_ string: String) {
        let parts = string.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 2 {
            let digits = parts[1]
            // Only plain decimal: "+8", " 8" or "08" are not what anyone meant to write.
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  digits == "0" || !digits.hasPrefix("0"),
                  let length = Int(digits)
            else { return nil }
            self.init(address: address, prefixLength: length)
        } else {
            self.init(address: address, prefixLength: address.bitWidth)
        }
    }

    /// A network from an address and a prefix length; nil if the length does not fit the family.
    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.bitWidth else { return nil }
        if case .v6(let high, let low) = address, prefixLength >= 96, high == 0, low >> 32 == 0xFFFF {
            self.address = CIDR.mask(.v4(UInt32(truncatingIfNeeded: low)), prefixLength - 96)
            self.prefixLength = prefixLength - 96
        } else {
            self.address = CIDR.mask(address, prefixLength)
            self.prefixLength = prefixLength
        }
    }

    /// `network/length`, with the address in canonical form.
    public var description: String { "\(address)/\(prefixLength)" }

    /// Whether `address` lies in this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    public func contains(_ address: IPAddress) -> Bool {
        let candidate = address.unmappedIPv4
        guard candidate.isIPv4 == self.address.isIPv4 else { return false }
        return CIDR.mask(candidate, prefixLength) == self.address
    }

    /// Clears every bit after the first `length` bits.
    static func mask(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let value):
            guard length < 32 else { return address }
            guard length > 0 else { return .v4(0) }
            return .v4(value & ~(UInt32.max >> UInt32(length)))
        case .v6(let high, let low):
            if length >= 128 { return address }
            if length <= 0 { return .v6(0, 0) }
            if length >= 64 {
                let lowLength = length - 64
                return .v6(high, lowLength == 0 ? 0 : low & ~(UInt64.max >> UInt64(lowLength)))
            }
            return .v6(high & ~(UInt64.max >> UInt64(length)), 0)
        }
    }
}
