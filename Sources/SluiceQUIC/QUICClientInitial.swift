import Crypto

/// Client Initial packets built the way a QUIC client builds them (RFC 9000 §17.2.2, RFC 9001
/// §5.3-5.4): the other side of `QUICInitialSniffer`, for what must feed it Initials with
/// chosen contents (the unit tests, the fuzz target, the UDP benchmark). Checked byte for byte
/// against RFC 9001 Appendix A.2.
public enum QUICClientInitial {
    /// Protects a packet: `header` is the unprotected long header ending with the packet
    /// number (`packetNumberLength` bytes), `payload` the frames. Empty when the header is too
    /// short for its packet number or the payload too short to sample (RFC 9001 §5.4.2).
    public static func seal(header: [UInt8], packetNumberLength: Int, payload: [UInt8], connectionID: [UInt8]) -> [UInt8] {
        let packetNumberOffset = header.count - packetNumberLength
        guard (1...4).contains(packetNumberLength), packetNumberOffset >= 7,
              packetNumberLength + payload.count + 16 >= 4 + 16
        else { return [] }
        let keys = QUICInitialKeys(destinationConnectionID: connectionID)
        var nonce = keys.iv
        for index in 0..<packetNumberLength { nonce[12 - packetNumberLength + index] ^= header[packetNumberOffset + index] }
        guard let gcmNonce = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.seal(payload, using: keys.key, nonce: gcmNonce, authenticating: header),
              case var packet = header + Array(box.ciphertext) + Array(box.tag),
              let mask = keys.mask(sample: packet[(packetNumberOffset + 4)..<(packetNumberOffset + 20)])
        else { return [] }
        packet[0] ^= mask[0] & 0x0F
        for index in 0..<packetNumberLength { packet[packetNumberOffset + index] ^= mask[1 + index] }
        return packet
    }

    /// A version 1 client Initial to `connectionID` (no source connection ID, no token)
    /// carrying `frames`, with PADDING so that the datagram is at least `minimumSize` bytes
    /// (RFC 9000 §14.1: 1200), packet number `packetNumber` in 2 bytes.
    public static func make(frames: [UInt8], connectionID: [UInt8], packetNumber: UInt16 = 0, minimumSize: Int = 1200) -> [UInt8] {
        let connectionID = Array(connectionID.prefix(QUICLongHeaderPacket.maxConnectionIDLength))
        // first byte, version, DCID length + DCID, SCID length, token length, 2-byte Length, 2-byte packet number
        let headerSize = 1 + 4 + 1 + connectionID.count + 1 + 1 + 2 + 2
        var payload = frames
        let short = minimumSize - (headerSize + payload.count + 16)
        if short > 0 { payload += [UInt8](repeating: 0, count: short) }
        // The sample needs 16 bytes from 4 past the packet number's start.
        if payload.count < 2 { payload += [UInt8](repeating: 0, count: 2 - payload.count) }
        let length = min(2 + payload.count + 16, 0x3FFF)
        var header: [UInt8] = [0xC1, 0, 0, 0, 1, UInt8(connectionID.count)] + connectionID + [0, 0]
        header += [0x40 | UInt8(length >> 8), UInt8(length & 0xFF), UInt8(packetNumber >> 8), UInt8(packetNumber & 0xFF)]
        return seal(header: header, packetNumberLength: 2, payload: Array(payload.prefix(length - 18)), connectionID: connectionID)
    }

    /// A CRYPTO frame (RFC 9000 §19.6) carrying `data` at stream `offset`.
    public static func cryptoFrame<Data: Collection<UInt8>>(offset: UInt64, _ data: Data) -> [UInt8] {
        [0x06] + varint(offset) + varint(UInt64(data.count)) + data
    }

    /// RFC 9000 §16: the shortest encoding of `value` (at most 2^62 - 1).
    public static func varint(_ value: UInt64) -> [UInt8] {
        switch value {
        case ..<(1 << 6): return [UInt8(value)]
        case ..<(1 << 14): return [0x40 | UInt8(value >> 8), UInt8(value & 0xFF)]
        case ..<(1 << 30): return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt64($0))) | ($0 == 0 ? 0x80 : 0) }
        default: return (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) | ($0 == 0 ? 0xC0 : 0) }
        }
    }
}
