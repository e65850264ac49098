import Crypto

/// One long-header packet found in a datagram, its protection not removed yet.
///
/// ```
/// Long Header Packet {
///   Header Form (1) = 1, Fixed Bit (1) = 1, Long Packet Type (2),
///   Type-Specific Bits (4),                  // protected: reserved (2), packet number length (2)
///   Version (32),
///   Destination Connection ID Length (8), Destination Connection ID (0..160),
///   Source Connection ID Length (8), Source Connection ID (0..160),
///   Token Length (i), Token (..),            // Initial only
///   Length (i),                              // packet number + payload
///   Packet Number (8..32),                   // protected
///   Packet Payload (8..),
/// }                                          // RFC 9000 §17.2, §17.2.2
/// ```
struct QUICLongHeaderPacket: Equatable {
    /// RFC 9000 §17.2: the Long Packet Type values of version 1.
    enum PacketType: UInt8 { case initial = 0, zeroRTT = 1, handshake = 2, retry = 3 }

    let type: PacketType
    let version: UInt32
    /// Where the packet starts in the datagram (its first byte).
    let start: Int
    /// Where the Destination Connection ID lies in the datagram.
    let destinationConnectionID: Range<Int>
    /// Where the (protected) packet number starts.
    let packetNumberOffset: Int
    /// Where this packet ends; a coalesced packet may follow.
    let end: Int

    static let version1: UInt32 = 1
    static let maxConnectionIDLength = 20

    /// Why the packets of a datagram could not be read further.
    enum Stop: Error, Equatable {
        /// A short-header packet, padding or nothing: the rest of the datagram is not ours.
        case endOfLongHeaders
        /// A long header of another version than 1 (0: version negotiation).
        case unsupportedVersion(UInt32)
        /// Lengths that run past the datagram (a truncated copy or garbage).
        case truncated
    }

    /// Splits a datagram into its coalesced long-header packets (RFC 9000 §12.2), in order,
    /// up to the first one that cannot be read; `stop` says why reading stopped.
    static func packets(in datagram: [UInt8]) -> (packets: [QUICLongHeaderPacket], stop: Stop) {
        var packets: [QUICLongHeaderPacket] = []
        var start = 0
        while start < datagram.count {
            switch packet(in: datagram, at: start) {
            case .success(let packet):
                packets.append(packet)
                start = packet.end
            case .failure(let stop):
                return (packets, stop)
            }
        }
        return (packets, .endOfLongHeaders)
    }

    private static func packet(in datagram: [UInt8], at start: Int) -> Result<QUICLongHeaderPacket, Stop> {
        var reader = QUICReader(datagram, start..<datagram.count)
        guard let first = reader.readByte(), first & 0x80 != 0 else { return .failure(.endOfLongHeaders) }
        guard let version = reader.readUInt32() else { return .failure(.truncated) }
        guard version == version1 else { return .failure(.unsupportedVersion(version)) }
        // Version 1 sets the fixed bit (RFC 9000 §17.2; RFC 9287's greasing needs the peer's consent).
        guard first & 0x40 != 0, let type = PacketType(rawValue: (first >> 4) & 0x03) else { return .failure(.truncated) }
        guard let dcidLength = reader.readByte(), Int(dcidLength) <= maxConnectionIDLength,
              let dcid = reader.readRange(Int(dcidLength)),
              let scidLength = reader.readByte(), Int(scidLength) <= maxConnectionIDLength,
              reader.readRange(Int(scidLength)) != nil
        else { return .failure(.truncated) }
        // A Retry has no Length: it runs to the end of the datagram.
        if type == .retry {
            return .success(QUICLongHeaderPacket(
                type: type, version: version, start: start, destinationConnectionID: dcid, packetNumberOffset: reader.end, end: reader.end))
        }
        if type == .initial {
            guard let tokenLength = reader.readLength(), reader.readRange(tokenLength) != nil else { return .failure(.truncated) }
        }
        guard let length = reader.readLength() else { return .failure(.truncated) }
        let packetNumberOffset = reader.position
        return .success(QUICLongHeaderPacket(
            type: type, version: version, start: start, destinationConnectionID: dcid, packetNumberOffset: packetNumberOffset,
            end: packetNumberOffset + length))
    }
}

extension QUICLongHeaderPacket {
    /// Why an Initial did not open.
    enum OpenError: Error, Equatable {
        /// Too short to hold a packet number, the 16-byte sample and the AEAD tag.
        case tooShort
        /// The AEAD tag did not verify: not a client Initial for this connection ID, or altered.
        case authenticationFailed
    }

    /// Removes header protection (RFC 9001 §5.4) and decrypts the payload (§5.3,
    /// AEAD_AES_128_GCM): the frames, in the clear.
    func open(in datagram: [UInt8], keys: QUICInitialKeys) -> Result<[UInt8], OpenError> {
        // §5.4.2: the sample starts 4 bytes after the packet number's start, whatever its length.
        let sampleStart = packetNumberOffset + 4
        guard sampleStart + 16 <= end, end <= datagram.count,
              let mask = keys.mask(sample: datagram[sampleStart..<(sampleStart + 16)])
        else { return .failure(.tooShort) }
        var header = Array(datagram[start..<packetNumberOffset])
        // Long header: the low 4 bits of the first byte are protected.
        header[0] ^= mask[0] & 0x0F
        let packetNumberLength = Int(header[0] & 0x03) + 1
        var packetNumber: UInt64 = 0
        for index in 0..<packetNumberLength {
            let byte = datagram[packetNumberOffset + index] ^ mask[1 + index]
            header.append(byte)
            packetNumber = packetNumber << 8 | UInt64(byte)
        }
        let payloadStart = packetNumberOffset + packetNumberLength
        guard end - payloadStart >= 16 + 1 else { return .failure(.tooShort) }
        // §5.3: the nonce is the IV XORed with the packet number, left-padded to 12 bytes. A
        // client's first flight starts each space at 0, so the truncated number is the full one
        // (RFC 9000 §A.3 with no packet received yet).
        var nonceBytes = keys.iv
        for index in 0..<8 { nonceBytes[11 - index] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * UInt64(index))) }
        let tagStart = end - 16
        guard let nonce = try? AES.GCM.Nonce(data: nonceBytes),
              let box = try? AES.GCM.SealedBox(
                  nonce: nonce, ciphertext: datagram[payloadStart..<tagStart], tag: datagram[tagStart..<end]),
              let plaintext = try? AES.GCM.open(box, using: keys.key, authenticating: header)
        else { return .failure(.authenticationFailed) }
        return .success(Array(plaintext))
    }
}
