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

    /// Reads an IPv4 (no fragments after the first) or IPv6 packet carrying UDP. IPv6
    /// extension headers are not walked: a packet whose next header is not UDP gives nil.
    public init?(packet bytes: [UInt8]) {
        guard let first = bytes.first else { return nil }
        let udpStart: Int
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, bytes.count >= headerLength + 8, bytes[9] == 17 else { return nil }
            // A non-first fragment has no UDP header.
            guard (UInt16(bytes[6] & 0x1F) << 8 | UInt16(bytes[7])) == 0 else { return nil }
            guard let source = IPAddress(bytes: bytes[12..<16]), let destination = IPAddress(bytes: bytes[16..<20]) else { return nil }
            self.source = source
            self.destination = destination
            udpStart = headerLength
        case 6:
            guard bytes.count >= 48, bytes[6] == 17 else { return nil }
            guard let source = IPAddress(bytes: bytes[8..<24]), let destination = IPAddress(bytes: bytes[24..<40]) else { return nil }
            self.source = source
            self.destination = destination
            udpStart = 40
        default:
            return nil
        }
        sourcePort = Int(bytes[udpStart]) << 8 | Int(bytes[udpStart + 1])
        destinationPort = Int(bytes[udpStart + 2]) << 8 | Int(bytes[udpStart + 3])
        payload = bytes[(udpStart + 8)...]
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
