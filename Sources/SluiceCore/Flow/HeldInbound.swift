public import NIOCore

/// Inbound bytes and an end of input kept back while nobody behind a handler can take them
/// yet (a protocol being sniffed, a tunnel being dialled), to be replayed in order once
/// someone can: the bytes first, then the end of input.
public struct HeldInbound: Sendable {
    public private(set) var bytes: ByteBuffer?
    /// The peer's end of input (half-close) came while holding.
    public private(set) var inputClosed = false

    public init() {}

    /// Keeps `chunk` behind what is kept.
    public mutating func append(_ chunk: inout ByteBuffer) {
        if var bytes = self.bytes.take() {
            bytes.writeBuffer(&chunk)
            self.bytes = bytes
        } else {
            self.bytes = chunk
        }
    }

    /// Keeps the end of input, to replay behind the bytes.
    public mutating func holdInputClosed() {
        self.inputClosed = true
    }

    /// How many bytes are kept.
    public var readableBytes: Int { self.bytes?.readableBytes ?? 0 }

    /// What to replay, in order, leaving nothing kept. `bytes` is nil when none are kept.
    public mutating func takeForReplay() -> (bytes: ByteBuffer?, inputClosed: Bool) {
        let bytes = self.bytes.take()
        let inputClosed = self.inputClosed
        self.inputClosed = false
        return (bytes.flatMap { $0.readableBytes > 0 ? $0 : nil }, inputClosed)
    }

    /// Takes the bytes only (to write them elsewhere), leaving the end of input kept.
    public mutating func takeBytes() -> ByteBuffer? {
        self.bytes.take()
    }
}
