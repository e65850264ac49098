/// Why a flow's client Initials give no ClientHello to decide with. The policy treats every
/// one of these as "no SNI"; `description` goes to the debug log.
public enum QUICInitialError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first datagram does not start with a long-header packet.
    case notLongHeader
    /// A long header of another QUIC version (only version 1's Initial keys are known).
    case unsupportedVersion(UInt32)
    /// The first datagram's first packet is not an Initial.
    case notInitial
    /// Lengths that run past the datagram.
    case truncated
    /// Too short to carry a protected packet number, sample and tag.
    case tooShort
    /// The AEAD tag did not verify.
    case authenticationFailed
    /// A frame whose fields run past the payload.
    case malformedFrame
    /// A frame type RFC 9000 does not allow in an Initial packet.
    case frameNotAllowed(UInt64)
    /// CRYPTO data past the reassembly limit (or in too many pieces).
    case cryptoTooLarge
    /// The CRYPTO stream is not a ClientHello, or a broken one.
    case clientHello(String)
    /// The ClientHello did not complete within the datagrams or the time the guard waits.
    case incompleteClientHello

    public var description: String {
        switch self {
        case .notLongHeader: "not a QUIC long-header packet"
        case .unsupportedVersion(let version): "QUIC version 0x\(String(version, radix: 16)) is not decoded (only version 1)"
        case .notInitial: "not a QUIC Initial packet"
        case .truncated: "QUIC packet lengths run past the datagram"
        case .tooShort: "QUIC Initial too short"
        case .authenticationFailed: "QUIC Initial does not decrypt with its connection ID's keys"
        case .malformedFrame: "malformed frame in a QUIC Initial"
        case .frameNotAllowed(let type): "frame type 0x\(String(type, radix: 16)) is not allowed in a QUIC Initial"
        case .cryptoTooLarge: "QUIC CRYPTO data past \(QUICInitialSniffer.maxCryptoBytes) bytes"
        case .clientHello(let reason): "QUIC ClientHello: \(reason)"
        case .incompleteClientHello: "QUIC ClientHello not complete"
        }
    }
}
