import NIOCore

extension Optional where Wrapped == ByteBuffer {
    /// Adds bytes just read to what is buffered and not yet framed. With nothing buffered
    /// (the usual case) the read buffer itself is kept, no copy.
    mutating func append(_ bytes: ByteBuffer) {
        guard case .some(var pending) = self, pending.readableBytes > 0 else {
            self = bytes
            return
        }
        self = nil  // one reference left: the write below need not copy the storage
        var bytes = bytes
        pending.writeBuffer(&bytes)
        self = pending
    }
}
