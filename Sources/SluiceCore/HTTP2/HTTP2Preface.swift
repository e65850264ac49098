public import NIOCore

/// The HTTP/2 client connection preface (RFC 9113 §3.4) that starts every prior-knowledge
/// (h2c) connection: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
public enum HTTP2Preface {
    /// The 24 preface bytes.
    public static let bytes: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// How far the bytes a client sent agree with the preface.
    public enum Match: Equatable, Sendable {
        /// All 24 bytes are there.
        case complete
        /// What arrived so far is a proper prefix of the preface: more bytes are needed.
        case partial
        /// The bytes differ from the preface.
        case mismatch
    }

    /// Compares the readable bytes of `buffer` with the preface, without consuming them.
    public static func match(_ buffer: ByteBuffer) -> Match {
        let available = buffer.readableBytesView
        let n = min(bytes.count, available.count)
        guard available.prefix(n).elementsEqual(bytes.prefix(n)) else { return .mismatch }
        return n == bytes.count ? .complete : .partial
    }
}
