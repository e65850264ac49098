/// The addresses, ports and payload of an IPv4 or IPv6 UDP packet as NFQUEUE hands it over
/// (the network-layer packet, possibly cut at the copy range). Pure and bounds-checked.
public struct UDPDatagram: Sendable, Equatable {
    /// The sender's address.
    public var source: IPAddress
    /// The sender's port.
    public var sourcePort: Int
    /// Where the datagram goes.
    public var destination: IPAddress
    /// The destination port.
    public var destinationPort: Int
    /// The UDP payload bytes present in the copy (may be fewer than the datagram had).
    public var payload: ArraySlice<UInt8>

    /// The destination ports whose payload is kept: DNS (decided by the query's name) and
    /// QUIC. For other ports only the headers are read, so the NFQUEUE hot path copies nothing.
    public static let payloadPorts: Set<Int> = [53, 443]

    /// Reads an IPv4 (no fragments after the first) or IPv6 packet carrying UDP (after up to 8
    /// hop-by-hop, routing or destination options headers). Anything else gives nil.
    /// The payload is copied only for `payloadPorts`.
    public init?<Bytes: RandomAccessCollection<UInt8>>(packet bytes: Bytes) where Bytes.Index == Int {
        guard let first = bytes.first else { return nil }
        let base = bytes.startIndex
        func byte(_ offset: Int) -> UInt8 { bytes[base + offset] }
        func address(_ offset: Int, _ count: Int) -> IPAddress? {
            IPAddress(bytes: bytes[(base + offset)..<(base + offset + count)])
        }
        let udpStart: Int
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, bytes.count >= headerLength + 8, byte(9) == 17 else { return nil }
            // A non-first fragment has no UDP header.
            guard (UInt16(byte(6) & 0x1F) << 8 | UInt16(byte(7))) == 0 else { return nil }
            guard let source = address(12, 4), let destination = address(16, 4) else { return nil }
            self.source = source
            self.destination = destination
            udpStart = headerLength
        case 6:
            guard bytes.count >= 48 else { return nil }
            guard let source = address(8, 16), let destination = address(24, 16) else { return nil }
            self.source = source
            self.destination = destination
            // Hop-by-hop, routing and destination options headers may come before UDP (at most
            // 8 of them are walked); a fragment header or anything else is not UDP to us.
            var next = byte(6)
            var offset = 40
            var walked = 0
            while next == 0 || next == 43 || next == 60 {
                guard walked < 8, offset + 8 <= bytes.count else { return nil }
                next = byte(offset)
                offset += (Int(byte(offset + 1)) + 1) * 8
                walked += 1
            }
            guard next == 17, offset + 8 <= bytes.count else { return nil }
            udpStart = offset
        default:
            return nil
        }
        sourcePort = Int(byte(udpStart)) << 8 | Int(byte(udpStart + 1))
        destinationPort = Int(byte(udpStart + 2)) << 8 | Int(byte(udpStart + 3))
        payload = UDPDatagram.payloadPorts.contains(destinationPort) ? ArraySlice(bytes[(base + udpStart + 8)...]) : []
    }

    /// Creates a datagram from its parts.
    public init(source: IPAddress, sourcePort: Int, destination: IPAddress, destinationPort: Int, payload: ArraySlice<UInt8> = []) {
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.destinationPort = destinationPort
        self.payload = payload
    }
}
