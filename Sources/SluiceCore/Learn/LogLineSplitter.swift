/// Cuts a byte stream (a log file read in chunks) into lines, keeping at most `maxLineBytes`
/// of an unfinished line, so memory stays bounded whatever the input: a line longer than that
/// is skipped to its end and counted, never buffered whole.
///
/// Lines end at `\n`; a `\r` before it is dropped. A line inside one chunk is handed over in
/// place (no copy); only a line split across chunks is assembled in the carry-over buffer.
public struct LogLineSplitter: Sendable {
    /// The longest line handed over; longer ones are counted in `overlongLines`.
    public let maxLineBytes: Int
    /// Lines skipped because they were longer than `maxLineBytes`.
    public private(set) var overlongLines = 0

    /// The start of a line whose end has not arrived yet.
    private var carry: [UInt8] = []

    /// Bytes of an unfinished line held between chunks: never more than `maxLineBytes`.
    public var heldBytes: Int { carry.count }
    /// True while skipping the rest of an overlong line.
    private var skippingOverlong = false

    /// A splitter that hands over lines of up to `maxLineBytes` bytes (1 MiB by default: an
    /// access-log line is bounded by the proxy's 64 KiB request-head limit, escaped).
    public init(maxLineBytes: Int = 1 << 20) {
        self.maxLineBytes = max(1, maxLineBytes)
    }

    /// Feeds the next chunk; calls `line` with each line it completes (without the newline).
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var start = 0
        let count = chunk.count
        while start < count {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[start...])
            guard let newline = rest.firstIndex(of: UInt8(ascii: "\n")) else {
                keep(rest)
                return
            }
            let end = start + newline
            let piece = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
            try complete(piece, line: line)
            start = end + 1
        }
    }

    /// Ends the stream: a last line without a newline (a file cut short, or one still being
    /// written) is handed over as it is, so the caller can judge and count it.
    public mutating func finish(line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        if skippingOverlong {
            skippingOverlong = false
            overlongLines += 1
        } else if !carry.isEmpty {
            let last = carry
            carry = []
            try last.withUnsafeBytes { try emit($0, line: line) }
        }
    }

    /// The piece up to a newline: the end of the carried line, or a whole line in place.
    private mutating func complete(_ piece: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        if skippingOverlong {
            skippingOverlong = false
            overlongLines += 1
            return
        }
        if carry.isEmpty {
            if piece.count > maxLineBytes {
                overlongLines += 1
                return
            }
            try emit(piece, line: line)
            return
        }
        if carry.count + piece.count > maxLineBytes {
            carry = []
            overlongLines += 1
            return
        }
        carry.append(contentsOf: piece)
        let whole = carry
        carry = []
        try whole.withUnsafeBytes { try emit($0, line: line) }
    }

    /// A line's start with no newline after it yet.
    private mutating func keep(_ piece: UnsafeRawBufferPointer) {
        if skippingOverlong { return }
        if carry.count + piece.count > maxLineBytes {
            carry = []
            skippingOverlong = true
            return
        }
        carry.append(contentsOf: piece)
    }

    private func emit(_ bytes: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        if let last = bytes.last, last == UInt8(ascii: "\r") {
            try line(UnsafeRawBufferPointer(rebasing: bytes.dropLast()))
        } else {
            try line(bytes)
        }
    }
}
