/// The frames of a decrypted Initial packet, read only as far as the ClientHello needs.
///
/// RFC 9000 §12.4 (Table 3) allows in Initial packets: PADDING (0x00), PING (0x01), ACK
/// (0x02, 0x03), CRYPTO (0x06) and CONNECTION_CLOSE (0x1c). Any other type is a protocol
/// violation; the walk gives up rather than guess a length.
enum QUICInitialFrames {
    /// A CRYPTO frame's stream offset and where its data lies in the payload.
    struct Crypto: Equatable {
        let offset: UInt64
        let data: Range<Int>
    }

    /// The CRYPTO frames of `payload`, in order, or why the walk stopped.
    static func cryptoFrames(in payload: [UInt8]) -> Result<[Crypto], QUICInitialError> {
        var reader = QUICReader(payload)
        var frames: [Crypto] = []
        while reader.remaining > 0 {
            guard let type = reader.readVarInt() else { return .failure(.malformedFrame) }
            switch type {
            case 0x00, 0x01:
                continue
            case 0x02, 0x03:
                // ACK { Largest Acknowledged (i), ACK Delay (i), ACK Range Count (i),
                //       First ACK Range (i), ACK Range (..) ..., [ECN Counts (..)] }  §19.3
                guard reader.readVarInt() != nil, reader.readVarInt() != nil,
                      let rangeCount = reader.readVarInt(), rangeCount <= UInt64(reader.remaining),
                      reader.readVarInt() != nil
                else { return .failure(.malformedFrame) }
                let extra = Int(rangeCount) * 2 + (type == 0x03 ? 3 : 0)
                for _ in 0..<extra where reader.readVarInt() == nil { return .failure(.malformedFrame) }
            case 0x06:
                // CRYPTO { Offset (i), Length (i), Crypto Data (..) }  §19.6
                guard let offset = reader.readVarInt(), let length = reader.readLength(),
                      let data = reader.readRange(length)
                else { return .failure(.malformedFrame) }
                frames.append(Crypto(offset: offset, data: data))
            case 0x1c:
                // CONNECTION_CLOSE { Error Code (i), Frame Type (i), Reason Phrase Length (i),
                //                    Reason Phrase (..) }  §19.19
                guard reader.readVarInt() != nil, reader.readVarInt() != nil,
                      let length = reader.readLength(), reader.readRange(length) != nil
                else { return .failure(.malformedFrame) }
            default:
                return .failure(.frameNotAllowed(type))
            }
        }
        return .success(frames)
    }
}
