import SluiceCore
/// What a QUIC flow's client Initials say so far.
public enum QUICClientHelloResult: Equatable, Sendable {
    /// Client Initials read so far; the ClientHello continues in later datagrams.
    case incomplete
    /// The whole ClientHello: its SNI host_name (lowercase, no trailing dot), nil without one.
    case clientHello(serverName: String?)
    /// No ClientHello can be read from this flow (not QUIC v1, not an Initial, broken).
    case undecodable(QUICInitialError)
}

/// Reads the ClientHello out of one QUIC flow's client Initial datagrams (RFC 9000 §17.2.2,
/// RFC 9001 §5): derives the Initial keys from the first Initial's Destination Connection ID,
/// removes header protection, decrypts, walks the frames, puts the CRYPTO stream together by
/// offset and hands the ClientHello to `ClientHelloParser`. Pure; feed datagrams in order.
///
/// Bounded: at most `maxCryptoBytes` of CRYPTO stream per flow. Only version 1 is read;
/// another version is `.undecodable`, which the policy treats as "no SNI".
public struct QUICInitialSniffer: Sendable {
    /// CRYPTO stream bytes kept per flow: the ClientHello must end within them. One TLS
    /// record's worth (2^14), like the TCP sniffer's cap; post-quantum key shares make
    /// ClientHellos of 1.5-2 KB today.
    public static let maxCryptoBytes = 16 << 10

    private var keys: (connectionID: [UInt8], keys: QUICInitialKeys)?
    /// Whether an Initial of this flow has decrypted.
    private var opened = false
    private var crypto = QUICCryptoReassembly(limit: QUICInitialSniffer.maxCryptoBytes)
    /// The result after the datagrams fed so far.
    public private(set) var result: QUICClientHelloResult = .incomplete

    /// A sniffer for a new flow.
    public init() {}

    /// Reads one datagram's UDP payload and returns the result so far. Once the result is not
    /// `.incomplete`, later datagrams do not change it.
    @discardableResult
    public mutating func feed<Bytes: Collection<UInt8>>(datagram: Bytes) -> QUICClientHelloResult {
        guard result == .incomplete else { return result }
        let datagram = Array(datagram)
        let isFirst = !opened && keys == nil
        let (packets, stop) = QUICLongHeaderPacket.packets(in: datagram)
        let initials = packets.filter { $0.type == .initial }
        if isFirst {
            // The flow's first datagram decides whether it is QUIC v1 at all.
            guard let first = packets.first else {
                switch stop {
                case .unsupportedVersion(let version): result = .undecodable(.unsupportedVersion(version))
                case .truncated: result = .undecodable(.truncated)
                case .endOfLongHeaders: result = .undecodable(.notLongHeader)
                }
                return result
            }
            guard first.type == .initial else {
                result = .undecodable(.notInitial)
                return result
            }
        }
        for packet in initials {
            switch read(packet, in: datagram) {
            case .success:
                opened = true
            case .failure(let error):
                // Until one Initial has opened there is nothing to read; after that, a packet
                // that does not open (a forgery, another connection ID) teaches nothing. What
                // the sender itself wrote wrong (frames, size) ends the flow's reading.
                if !opened || error == .cryptoTooLarge || error.isFrameError {
                    result = .undecodable(error)
                    return result
                }
            }
        }
        if case .undecodable = result { return result }
        result = clientHelloSoFar()
        return result
    }

    /// Opens one Initial and adds its CRYPTO frames to the stream.
    private mutating func read(_ packet: QUICLongHeaderPacket, in datagram: [UInt8]) -> Result<Void, QUICInitialError> {
        let connectionID = Array(datagram[packet.destinationConnectionID])
        if keys == nil { keys = (connectionID, QUICInitialKeys(destinationConnectionID: connectionID)) }
        // The first flight keeps the connection ID; another one is another connection's.
        guard let keys, keys.connectionID == connectionID else { return .failure(.authenticationFailed) }
        let payload: [UInt8]
        switch packet.open(in: datagram, keys: keys.keys) {
        case .success(let plaintext): payload = plaintext
        case .failure(.tooShort): return .failure(.tooShort)
        case .failure(.authenticationFailed): return .failure(.authenticationFailed)
        }
        let frames: [QUICInitialFrames.Crypto]
        switch QUICInitialFrames.cryptoFrames(in: payload) {
        case .success(let found): frames = found
        case .failure(let error): return .failure(error)
        }
        for frame in frames where !crypto.insert(offset: frame.offset, payload[frame.data]) {
            return .failure(.cryptoTooLarge)
        }
        return .success(())
    }

    /// The ClientHello, once the stream holds all of it.
    private func clientHelloSoFar() -> QUICClientHelloResult {
        let available = crypto.contiguousCount
        guard available > 0 else { return .incomplete }
        // The message's advertised length must fit what the stream may hold.
        if available >= 4 {
            let length = 4 + (Int(crypto.bytes[1]) << 16 | Int(crypto.bytes[2]) << 8 | Int(crypto.bytes[3]))
            if length > QUICInitialSniffer.maxCryptoBytes { return .undecodable(.cryptoTooLarge) }
        }
        switch ClientHelloParser.parse(handshakeMessage: crypto.bytes.prefix(available)) {
        case .incomplete:
            return .incomplete
        case .clientHello(let serverName):
            return .clientHello(serverName: serverName)
        case .malformed(let reason):
            return .undecodable(.clientHello(reason))
        case .notTLS:
            return .undecodable(.clientHello("not a TLS handshake message"))
        }
    }
}

extension QUICInitialError {
    /// Errors in what decrypted fine: the sender wrote them, so reading on cannot help.
    fileprivate var isFrameError: Bool {
        switch self {
        case .malformedFrame, .frameNotAllowed: true
        default: false
        }
    }
}
